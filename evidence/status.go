package evidence

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/evidencequery"
	"github.com/dpiawatch/dpiawatch/triage"
)

// RiskStatus is a risk's line on the pack's first page: red, amber or
// green against the register's residual score, which way it moved since
// the previous period, and why.
type RiskStatus struct {
	// RAG is StatusRed, StatusAmber, StatusGreen, or StatusGrey when the
	// figures cannot be weighed against the register.
	RAG string `json:"rag"`
	// Direction is the rate against the previous period's: DirectionWorse,
	// DirectionBetter, DirectionSame, or "" when either is not assessable.
	Direction string `json:"direction"`
	// LowerBound: alerts of the period were still undecided when the pack
	// was made, so the rate (and the status) may yet rise.
	LowerBound bool   `json:"lower_bound"`
	Reason     string `json:"reason"`
}

// RiskStatus.RAG values.
const (
	StatusRed   = "red"
	StatusAmber = "amber"
	StatusGreen = "green"
	StatusGrey  = "grey"
)

// RiskStatus.Direction values.
const (
	DirectionWorse  = "worse"
	DirectionBetter = "better"
	DirectionSame   = "same"
)

// NotScored stands for a register value the DPIA left blank, wherever the
// reports show one.
const NotScored = "not scored in the DPIA"

// Backlog is a risk's alerts of the period nobody had decided on when the
// pack was made.
type Backlog struct {
	Alerts int64 `json:"alerts"`
	// Oldest is the local day the oldest undecided alert was first seen;
	// "" when there is none.
	Oldest string `json:"oldest_first_seen"`
	// AgeDays is how many whole days before the period's end that was: the
	// same data and period give the same pack, so the age is not taken
	// from the clock.
	AgeDays int `json:"age_days_at_period_end"`
}

// PeriodAlerts is one period of a risk's history, for the first page's
// chart.
type PeriodAlerts struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Alerts    int64  `json:"alerts"`
	Confirmed int64  `json:"confirmed_misuse"`
}

// HistoryPeriods is how many periods the charts show, this one included.
const HistoryPeriods = 4

// confidence is the two-sided level of the rate's interval.
const confidence = 0.95

// poissonInterval is the exact (Garwood) two-sided interval of a Poisson
// mean given k observed events: the means under which seeing k or more,
// and k or fewer, each has probability (1-confidence)/2. It is found by
// bisection on the Poisson distribution function, which needs no special
// functions beyond Lgamma.
func poissonInterval(k int64) (lo, hi float64) {
	tail := (1 - confidence) / 2
	upper := float64(k) + 10*math.Sqrt(float64(k)+1) + 10
	if k > 0 {
		// P(X >= k; lo) = tail, i.e. P(X <= k-1; lo) = 1 - tail; the
		// distribution function falls as the mean grows.
		lo = bisect(0, upper, func(mu float64) bool { return poissonCDF(k-1, mu) > 1-tail })
	}
	hi = bisect(0, upper, func(mu float64) bool { return poissonCDF(k, mu) > tail })
	return lo, hi
}

// bisect finds where below turns from true to false on [a, b].
func bisect(a, b float64, below func(float64) bool) float64 {
	for range 200 {
		m := (a + b) / 2
		if below(m) {
			a = m
		} else {
			b = m
		}
	}
	return (a + b) / 2
}

// poissonCDF is P(X <= k) for X Poisson with mean mu, summed in log space
// so that large means do not underflow.
func poissonCDF(k int64, mu float64) float64 {
	if mu == 0 {
		return 1
	}
	var sum float64
	lmu := math.Log(mu)
	for i := int64(0); i <= k; i++ {
		lg, _ := math.Lgamma(float64(i + 1))
		sum += math.Exp(float64(i)*lmu - mu - lg)
	}
	return math.Min(sum, 1)
}

// per10k is a count per 10,000 staff-days with two decimals.
func per10k(events float64, staffDays int64) string {
	return fmt.Sprintf("%.2f", events*10000/float64(staffDays))
}

// residualCeiling is the rate per 10,000 staff-days at and above which the
// observed likelihood is worse than a residual score allows; ok is false
// when the register gives no score.
func residualCeiling(residual string) (ceiling int64, ok bool) {
	switch levelRank(residual) {
	case 0:
		return possibleRate, true
	case 1:
		return probableRate, true
	case 2:
		return math.MaxInt64 / 10000, true
	}
	return 0, false
}

// status weighs a risk's observed likelihood against its residual score.
// Red: the rate seen is above what the score allows. Amber: it is not, but
// would be if the undecided alerts proved misuse, so the status is a lower
// bound. Green otherwise. Grey when nothing can be weighed.
func status(k RiskReport) RiskStatus {
	o := k.Observed
	s := RiskStatus{RAG: StatusGrey, LowerBound: k.Backlog.Alerts > 0}
	if o.RatePer10k != "" && k.Previous.Rate != "" {
		switch cur, prev := hundredths(o.RatePer10k), hundredths(k.Previous.Rate); {
		case cur > prev:
			s.Direction = DirectionWorse
		case cur < prev:
			s.Direction = DirectionBetter
		default:
			s.Direction = DirectionSame
		}
	}
	ceiling, scored := residualCeiling(o.Residual)
	switch {
	case len(k.Checks) == 0:
		s.Reason = "Needs other evidence: no enabled check looks for this risk."
		return s
	case o.RatePer10k == "":
		s.Reason = strings.TrimPrefix(o.Comparison, "Not assessable: ")
		return s
	case !scored:
		s.Reason = fmt.Sprintf("The residual risk is %s, so there is nothing to weigh the observed likelihood (%s) against.", NotScored, levelWords(o.Level))
		return s
	}
	worst := (o.ConfirmedEpisodes + k.Backlog.Alerts) * 10000
	switch {
	case o.ConfirmedEpisodes*10000 >= ceiling*o.StaffDays:
		s.RAG = StatusRed
		s.Reason = fmt.Sprintf("Confirmed misuse is more frequent than a %s residual risk allows.", o.Residual)
	case worst >= ceiling*o.StaffDays:
		s.RAG = StatusAmber
		s.Reason = fmt.Sprintf("Within a %s residual risk so far, but %s undecided: if enough prove misuse, it is not.",
			o.Residual, plural(int(k.Backlog.Alerts), "alert"))
	default:
		s.RAG = StatusGreen
		s.Reason = fmt.Sprintf("Within a %s residual risk", o.Residual)
		if k.Backlog.Alerts > 0 {
			s.Reason += ", even if every undecided alert proved misuse"
		}
		s.Reason += "."
	}
	return s
}

// hundredths reads a two-decimal figure as an integer.
func hundredths(s string) int64 {
	whole, frac, _ := strings.Cut(s, ".")
	var w, f int64
	fmt.Sscan(whole, &w)
	fmt.Sscan(frac, &f)
	return w*100 + f
}

// backlog finds the undecided alerts among groups keep selects.
func backlog(groups []evidencequery.TriageGroup, keep func(evidencequery.AlertGroup) bool, end time.Time, loc *time.Location) Backlog {
	var b Backlog
	var oldest time.Time
	for _, g := range groups {
		if g.Outcome != "" || !keep(g.AlertGroup) {
			continue
		}
		b.Alerts += g.Alerts
		if !g.Earliest.IsZero() && (oldest.IsZero() || g.Earliest.Before(oldest)) {
			oldest = g.Earliest
		}
	}
	if !oldest.IsZero() {
		b.Oldest = oldest.In(loc).Format(time.DateOnly)
		b.AgeDays = int(end.Sub(oldest) / (24 * time.Hour))
	}
	return b
}

// history counts a risk's alerts and confirmed misuse in each period.
func history(ps []period, alerts [][]evidencequery.AlertGroup, triages [][]evidencequery.TriageGroup, keep func(evidencequery.AlertGroup) bool) []PeriodAlerts {
	out := make([]PeriodAlerts, len(ps))
	for i, p := range ps {
		out[i] = PeriodAlerts{From: p.info.From, To: p.info.To}
		_, out[i].Alerts = countBy(alerts[i], keep)
		for _, g := range triages[i] {
			if g.Outcome == triage.ConfirmedMisuse && keep(g.AlertGroup) {
				out[i].Confirmed += g.Alerts
			}
		}
	}
	return out
}

// periodBefore is the period just before p: the same number of calendar
// months when p is whole months (a quarter before a quarter), else the
// same number of days.
func periodBefore(p period, loc *time.Location) period {
	first, end := p.days[0], p.days[len(p.days)-1]
	if first.Day() == 1 && end.Day() == 1 {
		months := (end.Year()-first.Year())*12 + int(end.Month()-first.Month())
		start := time.Date(first.Year(), first.Month()-time.Month(months), 1, 0, 0, 0, 0, loc)
		n := int(math.Round(first.Sub(start).Hours() / 24))
		return newPeriod(start, n, loc)
	}
	n := len(p.dates)
	return newPeriod(first.AddDate(0, 0, -n), n, loc)
}

// DefaultPeriod is the period a pack covers when none is given: the last
// complete review cycle before now in the DPIA's timezone — a calendar
// quarter, or the month, half-year or year the register's review
// frequency states.
func DefaultPeriod(cfg *config.Config, dpiaID string, now time.Time) (from, to string, err error) {
	reg, ok := cfg.Registers[dpiaID]
	if !ok {
		return "", "", fmt.Errorf("evidence: unknown DPIA %q", dpiaID)
	}
	loc := time.UTC
	for _, o := range cfg.Orgs {
		if o.DPIA == dpiaID && o.Location != nil {
			loc = o.Location
			break
		}
	}
	months := cycleMonths(reg.Review.Frequency)
	local := now.In(loc)
	// The cycle holding now starts at a multiple of months from January.
	m := (int(local.Month()) - 1) / months * months
	end := time.Date(local.Year(), time.Month(m+1), 1, 0, 0, 0, 0, loc)
	start := time.Date(end.Year(), end.Month()-time.Month(months), 1, 0, 0, 0, 0, loc)
	return start.Format(time.DateOnly), end.AddDate(0, 0, -1).Format(time.DateOnly), nil
}

// cycleMonths reads a register's review frequency ("1/4ly whilst …",
// "annually", "every six months"); a quarter when it says none we know.
func cycleMonths(freq string) int {
	f := strings.ToLower(freq)
	switch {
	case strings.Contains(f, "month") && (strings.Contains(f, "six") || strings.Contains(f, "6")), strings.Contains(f, "half"), strings.Contains(f, "1/2"):
		return 6
	case strings.Contains(f, "month"):
		return 1
	case strings.Contains(f, "annual"), strings.Contains(f, "year"):
		return 12
	}
	return 3
}
