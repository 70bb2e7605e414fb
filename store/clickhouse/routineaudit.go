package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/evidencequery"
	"github.com/dpiawatch/dpiawatch/routineaudit"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
)

// Routine audits (migration 5): one audit_samples row per draw, and each
// review an audit row of kind 'review' (object org/team/period, the item in
// detail), so that the review and its audit entry land together.

var _ store.RoutineAudits = (*Store)(nil)

const kindReview = "review"

// ScanTeamEvents calls fn for each event of org and team in [from, to), by
// time then key. FINAL folds the duplicates a retried batch may leave.
func (s *Store) ScanTeamEvents(ctx context.Context, org, team string, from, to time.Time, fn func(event.Event) error) error {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT `+eventSelectList+` FROM `+s.events+` FINAL WHERE org = `+p.str(org)+
		` AND actor_team = `+p.str(team)+` AND t >= `+p.time(from)+` AND t < `+p.time(to)+
		` ORDER BY t, far_sec, far_nsec, system, id`, p.list()...)
	if err != nil {
		return fmt.Errorf("clickhouse: scan team events: %w", err)
	}
	defer rows.Close()
	var r eventRow
	dest := r.dest()
	for rows.Next() {
		r = eventRow{}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("clickhouse: scan team events: %w", err)
		}
		if err := fn(decodeEvent(&r)); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clickhouse: scan team events: %w", err)
	}
	return nil
}

// AuditTeams returns the teams org's events in [from, to) name, from the
// hourly rollup (periods start and end on the hour).
func (s *Store) AuditTeams(ctx context.Context, org string, from, to time.Time) ([]string, error) {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT toString(actor_team) FROM `+s.db+`.events_hourly WHERE org = `+p.str(org)+
		` AND hour >= toStartOfHour(`+p.time(from)+`) AND hour < `+p.time(to)+` AND actor_team != '' ORDER BY 1`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: audit teams: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("clickhouse: audit teams: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: audit teams: %w", err)
	}
	return out, nil
}

// PutAuditSample stores a sample unless one is stored, and returns the
// stored one (the first drawn). A new sample of a period its org's feed
// has not completed is refused (store.ErrFeedIncomplete).
func (s *Store) PutAuditSample(ctx context.Context, a routineaudit.Sample) (routineaudit.Sample, error) {
	if got, err := s.AuditSample(ctx, a.Org, a.Team, a.Period); err == nil {
		return got, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return routineaudit.Sample{}, err
	}
	if err := store.CheckComplete(ctx, s, a.Org, a.To); err != nil {
		return routineaudit.Sample{}, fmt.Errorf("clickhouse: put audit sample: %w", err)
	}
	n := len(a.Items)
	sys, ids, acts, subs, actions, recs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ts := make([]time.Time, n)
	for i, it := range a.Items {
		if it.N != i {
			return routineaudit.Sample{}, fmt.Errorf("clickhouse: put audit sample: item %d numbered %d", i, it.N)
		}
		sys[i], ids[i], ts[i], acts[i], subs[i], actions[i], recs[i] = it.System, it.EventID, clampTime(it.Time), it.ActorID, it.SubjectID, it.Action, it.Record
	}
	seq := s.nextSeq()
	err := s.insertRow(ctx, `INSERT INTO `+s.db+`.audit_samples (org, team, period, dpia, from_t, to_t, population, seed, drawn_at, seq,
	item_system, item_id, item_t, item_actor, item_subject, item_action, item_record)`, "sample:"+strconv.FormatUint(seq, 10),
		a.Org, a.Team, a.Period, a.DPIA, clampTime(a.From), clampTime(a.To), uint64(max(a.Population, 0)), a.Seed, clampTime(a.DrawnAt), seq,
		sys, ids, ts, acts, subs, actions, recs)
	if err != nil {
		return routineaudit.Sample{}, fmt.Errorf("clickhouse: put audit sample: %w", err)
	}
	return s.AuditSample(ctx, a.Org, a.Team, a.Period)
}

// AuditSample returns the first sample drawn for org, team and period, or
// store.ErrNotFound.
func (s *Store) AuditSample(ctx context.Context, org, team, period string) (routineaudit.Sample, error) {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT dpia, from_t, to_t, population, seed, drawn_at,
	item_system, item_id, item_t, item_actor, item_subject, item_action, item_record
FROM `+s.db+`.audit_samples FINAL WHERE org = `+p.str(org)+` AND team = `+p.str(team)+` AND period = `+p.str(period)+`
ORDER BY drawn_at, seq LIMIT 1`, p.list()...)
	if err != nil {
		return routineaudit.Sample{}, fmt.Errorf("clickhouse: audit sample: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return routineaudit.Sample{}, fmt.Errorf("clickhouse: audit sample: %w", err)
		}
		return routineaudit.Sample{}, fmt.Errorf("clickhouse: audit sample: %w", store.ErrNotFound)
	}
	a := routineaudit.Sample{Org: org, Team: team, Period: period}
	var (
		pop                                 uint64
		sys, ids, acts, subs, actions, recs []string
		ts                                  []time.Time
	)
	if err := rows.Scan(&a.DPIA, &a.From, &a.To, &pop, &a.Seed, &a.DrawnAt, &sys, &ids, &ts, &acts, &subs, &actions, &recs); err != nil {
		return routineaudit.Sample{}, fmt.Errorf("clickhouse: audit sample: %w", err)
	}
	a.Population = int64(pop)
	a.From, a.To, a.DrawnAt = a.From.UTC(), a.To.UTC(), a.DrawnAt.UTC()
	for i := range ids {
		a.Items = append(a.Items, routineaudit.SampleItem{N: i, System: sys[i], EventID: ids[i], Time: ts[i].UTC(), ActorID: acts[i],
			SubjectID: subs[i], Action: actions[i], Record: recs[i]})
	}
	return a, rows.Err()
}

// AddAuditReview stores r as one audit row, at once the review and its
// audit entry.
func (s *Store) AddAuditReview(ctx context.Context, r routineaudit.Review) (routineaudit.Review, error) {
	a, err := s.AuditSample(ctx, r.Org, r.Team, r.Period)
	if err != nil {
		return routineaudit.Review{}, fmt.Errorf("clickhouse: add audit review: %w", err)
	}
	if r.N < 0 || r.N >= len(a.Items) {
		return routineaudit.Review{}, fmt.Errorf("clickhouse: add audit review: item %d: %w", r.N, store.ErrNotFound)
	}
	seq := s.nextSeq()
	r.Seq = int64(seq)
	detail, err := storedjson.Marshal(map[string]any{"seq": r.Seq, "org": r.Org, "team": r.Team, "period": r.Period, "item": r.N, "note": r.Note})
	if err != nil {
		return routineaudit.Review{}, fmt.Errorf("clickhouse: add audit review: %w", err)
	}
	row := auditRow{seq: seq, org: r.Org, kind: kindReview, outcome: r.Outcome, note: r.Note,
		e: audit.Entry{At: r.At, Actor: r.Reviewer, Action: "routine-audit." + r.Outcome, Object: r.Org + "/" + r.Team + "/" + r.Period, Detail: string(detail)}}
	if err := s.insertAudit(ctx, row); err != nil {
		return routineaudit.Review{}, fmt.Errorf("clickhouse: add audit review: %w", err)
	}
	return r, nil
}

// AuditReviews returns the reviews of one sample, oldest first.
func (s *Store) AuditReviews(ctx context.Context, org, team, period string) ([]routineaudit.Review, error) {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT seq, toInt64(JSONExtractInt(detail, 'item')), outcome, actor, at, note FROM `+s.db+
		`.audit FINAL WHERE kind = 'review' AND object = `+p.str(org+"/"+team+"/"+period)+` ORDER BY seq`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: audit reviews: %w", err)
	}
	defer rows.Close()
	var out []routineaudit.Review
	for rows.Next() {
		r := routineaudit.Review{Org: org, Team: team, Period: period}
		var (
			seq uint64
			n   int64
		)
		if err := rows.Scan(&seq, &n, &r.Outcome, &r.Reviewer, &r.At, &r.Note); err != nil {
			return nil, fmt.Errorf("clickhouse: audit reviews: %w", err)
		}
		r.Seq, r.N, r.At = int64(seq), int(n), r.At.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: audit reviews: %w", err)
	}
	return out, nil
}

// firstSamples is the first draw of every sample; reviewsLatest the newest
// review of every reviewed item.
func (s *Store) firstSamples(where string) string {
	return `SELECT org, team, period, argMin(dpia, (drawn_at, seq)) AS s_dpia, argMin(from_t, (drawn_at, seq)) AS s_from,
	argMin(population, (drawn_at, seq)) AS s_pop, argMin(item_t, (drawn_at, seq)) AS s_items
FROM ` + s.db + `.audit_samples FINAL` + where + ` GROUP BY org, team, period`
}

func (s *Store) reviewsLatest() string {
	return `SELECT org, JSONExtractString(detail, 'team') AS r_team, JSONExtractString(detail, 'period') AS r_period,
	toInt64(JSONExtractInt(detail, 'item')) AS r_item, argMax(outcome, seq) AS r_outcome
FROM ` + s.db + `.audit FINAL WHERE kind = 'review' GROUP BY org, r_team, r_period, r_item`
}

// AuditCoverage returns how much of each stored sample was reviewed.
func (s *Store) AuditCoverage(ctx context.Context, orgs []string, from, to time.Time) ([]routineaudit.Coverage, error) {
	if orgs != nil && len(orgs) == 0 {
		return nil, nil
	}
	var p params
	where := ` WHERE from_t >= ` + p.time(from) + ` AND from_t < ` + p.time(to)
	if orgs != nil {
		where += ` AND org IN ` + p.strs(orgs)
	}
	rows, err := s.conn.Query(ctx, `SELECT sm.org, sm.s_dpia, sm.team, sm.period, sm.s_from, toInt64(sm.s_pop), toInt64(length(sm.s_items)),
	toInt64(countIf(rv.r_outcome != '')), toInt64(countIf(rv.r_outcome = `+p.str(routineaudit.ReviewReasonable)+`)),
	toInt64(countIf(rv.r_outcome = `+p.str(routineaudit.ReviewQuery)+`)), toInt64(countIf(rv.r_outcome = `+p.str(routineaudit.ReviewRefer)+`))
FROM (`+s.firstSamples(where)+`) AS sm
LEFT JOIN (`+s.reviewsLatest()+`) AS rv ON rv.org = sm.org AND rv.r_team = sm.team AND rv.r_period = sm.period
	AND rv.r_item < length(sm.s_items)
GROUP BY sm.org, sm.s_dpia, sm.team, sm.period, sm.s_from, sm.s_pop, sm.s_items
ORDER BY sm.org, sm.s_from, sm.team
SETTINGS join_use_nulls = 0`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: audit coverage: %w", err)
	}
	defer rows.Close()
	var out []routineaudit.Coverage
	for rows.Next() {
		var (
			c                          routineaudit.Coverage
			n, rev, reas, query, refer int64
		)
		if err := rows.Scan(&c.Org, &c.DPIA, &c.Team, &c.Period, &c.From, &c.Population, &n, &rev, &reas, &query, &refer); err != nil {
			return nil, fmt.Errorf("clickhouse: audit coverage: %w", err)
		}
		c.From = c.From.UTC()
		c.Sampled, c.Reviewed, c.Reasonable, c.Query, c.Refer = int(n), int(rev), int(reas), int(query), int(refer)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: audit coverage: %w", err)
	}
	return out, nil
}

// EvidenceRoutineAudits counts, per org of q's DPIA, the sampled accesses
// in [q.From, q.To) that were reviewed, and those referred as possible
// misuse (their newest review).
func (s *Store) EvidenceRoutineAudits(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.RoutineAuditGroup, error) {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT sm.org, toInt64(countIf(rv.r_outcome != '')), toInt64(countIf(rv.r_outcome = `+p.str(routineaudit.ReviewRefer)+`))
FROM (SELECT org, team, period, item_t, n FROM (`+s.firstSamples(` WHERE dpia = `+p.str(q.DPIA))+`) ARRAY JOIN s_items AS item_t, arrayEnumerate(s_items) AS n) AS sm
LEFT JOIN (`+s.reviewsLatest()+`) AS rv ON rv.org = sm.org AND rv.r_team = sm.team AND rv.r_period = sm.period AND rv.r_item = toInt64(sm.n) - 1
WHERE sm.item_t >= `+p.time(q.From)+` AND sm.item_t < `+p.time(q.To)+`
GROUP BY sm.org ORDER BY sm.org
SETTINGS join_use_nulls = 0`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: evidence routine audits: %w", err)
	}
	defer rows.Close()
	var out []evidencequery.RoutineAuditGroup
	for rows.Next() {
		var g evidencequery.RoutineAuditGroup
		if err := rows.Scan(&g.Org, &g.Samples, &g.Findings); err != nil {
			return nil, fmt.Errorf("clickhouse: evidence routine audits: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: evidence routine audits: %w", err)
	}
	return out, nil
}
