package simulate

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
)

var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

type rec struct {
	ev    event.Event
	label *Label
}

func collect(t *testing.T, o Options) (*Simulation, []rec) {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var out []rec
	err = s.Run(t.Context(), func(ev *event.Event, l *Label) error {
		r := rec{ev: *ev}
		if l != nil {
			c := *l
			r.label = &c
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, out
}

func digest(rs []rec) string {
	h := sha256.New()
	for _, r := range rs {
		b, _ := json.Marshal(r.ev)
		h.Write(b)
		if r.label != nil {
			fmt.Fprint(h, *r.label)
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestDeterministicBySeed(t *testing.T) {
	o := Options{Org: OrgStMartins, From: time.Date(2026, 3, 2, 0, 0, 0, 0, london), Days: 5, Seed: 42}
	s, a := collect(t, o)
	_, b := collect(t, o)
	if digest(a) != digest(b) {
		t.Fatal("same seed, different events")
	}
	// Run twice on one Simulation: the same again.
	var again []rec
	if err := s.Run(t.Context(), func(ev *event.Event, l *Label) error {
		again = append(again, rec{ev: *ev, label: l})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if digest(again) != digest(a) {
		t.Fatal("second Run differs")
	}
	o.Seed = 43
	if _, c := collect(t, o); digest(c) == digest(a) {
		t.Fatal("different seeds, same events")
	}
}

func TestRunStopsOnError(t *testing.T) {
	s, err := New(Options{Org: OrgStMartins, From: time.Date(2026, 3, 2, 0, 0, 0, 0, london), Days: 2})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	boom := fmt.Errorf("boom")
	if err := s.Run(t.Context(), func(*event.Event, *Label) error { n++; return boom }); err != boom || n != 1 {
		t.Fatalf("got %v after %d events", err, n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Run(ctx, func(*event.Event, *Label) error { return nil }); err == nil {
		t.Fatal("cancelled run succeeded")
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, o := range []Options{
		{Org: "nowhere", From: time.Now()},
		{Org: OrgStMartins},
		{Org: OrgStMartins, From: time.Now(), Days: -1},
		{Org: OrgStMartins, From: time.Now(), Scale: -1},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

// TestStream checks the stream's basic promises for both organisations.
func TestStream(t *testing.T) {
	for _, tc := range []struct {
		org   string
		scale float64
	}{{OrgStMartins, 1}, {OrgWiltshire, 0.25}} {
		t.Run(tc.org, func(t *testing.T) {
			from := time.Date(2026, 3, 25, 6, 0, 0, 0, london)
			s, rs := collect(t, Options{Org: tc.org, From: from, Days: 7, Seed: 7, Scale: tc.scale})
			if len(rs) < 1000 {
				t.Fatalf("only %d events", len(rs))
			}
			end := from.AddDate(0, 0, 7)
			ids := make(map[string]bool, len(rs))
			for i, r := range rs {
				ev := r.ev
				if err := ev.Validate(); err != nil {
					t.Fatalf("event %s invalid: %v", ev.ID, err)
				}
				if i > 0 && ev.Time.Before(rs[i-1].ev.Time) {
					t.Fatalf("event %s at %v before the previous at %v", ev.ID, ev.Time, rs[i-1].ev.Time)
				}
				if ev.Time.Before(from) || !ev.Time.Before(end) {
					t.Fatalf("event %s at %v outside the period", ev.ID, ev.Time)
				}
				if ids[ev.ID] {
					t.Fatalf("duplicate id %s", ev.ID)
				}
				ids[ev.ID] = true
			}
			// Reference data survives a CSV round trip.
			dir := t.TempDir()
			if err := reference.WriteDir(dir, s.Reference()); err != nil {
				t.Fatal(err)
			}
			d, err := reference.LoadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Staff) != len(s.Reference().Staff) || len(d.Relationships) != len(s.Reference().Relationships) || len(d.Shifts) != len(s.Reference().Shifts) {
				t.Fatal("round trip lost rows")
			}
		})
	}
}

// TestStMartinsRota: night shifts cross midnight, and a period over the
// last Sunday of March has a night whose UTC offset changes.
func TestStMartinsRota(t *testing.T) {
	s, err := New(Options{Org: OrgStMartins, From: time.Date(2026, 3, 26, 0, 0, 0, 0, london), Days: 7, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	var overMidnight, dst int
	for _, sh := range s.Reference().Shifts {
		st, en := sh.Start.In(london), sh.End.In(london)
		if st.YearDay() != en.YearDay() {
			overMidnight++
		}
		_, o1 := st.Zone()
		_, o2 := en.Zone()
		if o1 != o2 {
			dst++
			// 22:00 GMT to 07:30 BST is 8.5 hours, not 9.5.
			if got := en.Sub(st); got != 8*time.Hour+30*time.Minute {
				t.Errorf("DST night lasts %v", got)
			}
		}
	}
	if overMidnight == 0 || dst == 0 {
		t.Fatalf("nights over midnight %d, over the DST change %d", overMidnight, dst)
	}
	roles := map[string]int{}
	for _, st := range s.Reference().Staff {
		roles[st.Role]++
	}
	if roles["night-support-worker"] == 0 || roles["registered-manager"] != 1 || roles["drug-treatment-worker"] == 0 {
		t.Fatalf("roles %v", roles)
	}
}

// TestDisplayRefs: every person the simulation's relationships name has
// one local reference (subjects.csv) in the org, unique within it, of the
// org's own form and never the subject id itself.
func TestDisplayRefs(t *testing.T) {
	for _, tc := range []struct {
		org    string
		scale  float64
		format *regexp.Regexp
	}{{OrgStMartins, 1, regexp.MustCompile(`^WC-\d{3}$`)}, {OrgWiltshire, 0.01, regexp.MustCompile(`^LCS-\d{6}$`)}} {
		s, err := New(Options{Org: tc.org, From: time.Date(2026, 3, 2, 0, 0, 0, 0, london), Days: 1, Seed: 3, Scale: tc.scale})
		if err != nil {
			t.Fatal(err)
		}
		ref := s.Reference()
		refs, seen := map[string]string{}, map[string]bool{}
		for _, v := range ref.Subjects {
			if v.Org != tc.org || !tc.format.MatchString(v.DisplayRef) || v.DisplayRef == v.SubjectID || seen[v.DisplayRef] {
				t.Fatalf("%s: display reference %+v", tc.org, v)
			}
			if _, dup := refs[v.SubjectID]; dup {
				t.Fatalf("%s: %s has two references", tc.org, v.SubjectID)
			}
			refs[v.SubjectID], seen[v.DisplayRef] = v.DisplayRef, true
		}
		for _, r := range ref.Relationships {
			if refs[r.SubjectID] == "" {
				t.Fatalf("%s: %s has no display reference", tc.org, r.SubjectID)
			}
		}
	}
}

// TestInjectionsAndInnocence runs an independent oracle of CONTRACT §4 over
// the stream: every injected episode must show its own misuse, and every
// misuse found must belong to an episode of that check and pattern.
func TestInjectionsAndInnocence(t *testing.T) {
	rates := InjectionRates{OutOfHours: 2, NoBusinessNeed: 2, SharedCredential: 3, UnlockedSession: 1.5, BulkAccess: 0.5}
	for _, tc := range []struct {
		org   string
		scale float64
	}{{OrgStMartins, 1}, {OrgWiltshire, 0.05}} {
		t.Run(tc.org, func(t *testing.T) {
			// Spans Easter Monday 2026 (6 April).
			from := time.Date(2026, 4, 1, 0, 0, 0, 0, london)
			s, rs := collect(t, Options{Org: tc.org, From: from, Days: 7, Seed: 11, Scale: tc.scale, Injections: rates})
			x := reference.NewIndex(s.Reference())
			o := newOracle(s.w, x, s.Reference())
			for i := range rs {
				o.see(&rs[i].ev, rs[i].label)
			}
			o.finish()
			seen := map[string]bool{}
			for _, v := range o.violations {
				ok := false
				for _, l := range v.labels {
					if l != nil && l.Check == v.check && l.Pattern == v.pattern {
						ok = true
						seen[l.Episode] = true
					}
				}
				if !ok {
					t.Errorf("%s/%s not injected: events %v labels %s", v.check, v.pattern, v.ids, fmtLabels(v.labels))
				}
			}
			patterns := map[string]bool{}
			for _, r := range rs {
				if r.label != nil {
					patterns[r.label.Check+"/"+r.label.Pattern] = true
					if !seen[r.label.Episode] {
						t.Errorf("episode %s (%s/%s) shows no such misuse", r.label.Episode, r.label.Check, r.label.Pattern)
						seen[r.label.Episode] = true // report once
					}
				}
			}
			for c, ps := range Patterns() {
				for _, p := range ps {
					if !patterns[c+"/"+p] && s.w.injects(p) {
						t.Errorf("pattern %s/%s never injected", c, p)
					}
				}
			}
			if t.Failed() {
				t.Logf("episodes planned: %v", s.Episodes())
			}
		})
	}
}

func TestDisabled(t *testing.T) {
	_, rs := collect(t, Options{Org: OrgStMartins, From: time.Date(2026, 4, 1, 0, 0, 0, 0, london), Days: 3, Injections: InjectionRates{Disabled: true}})
	for _, r := range rs {
		if r.label != nil {
			t.Fatalf("labelled event %s with injections disabled", r.ev.ID)
		}
	}
}

func TestWriteLabel(t *testing.T) {
	var b bytes.Buffer
	if err := WriteLabel(&b, OrgStMartins, "lmc-0000001", &Label{Check: CheckOutOfHours, Pattern: "outside-shift", Episode: "st-martins-ep-0001"}); err != nil {
		t.Fatal(err)
	}
	want := `{"event_id":"lmc-0000001","org":"st-martins","check":"out-of-hours","pattern":"outside-shift","episode":"st-martins-ep-0001"}` + "\n"
	if b.String() != want {
		t.Fatalf("got %s", b.String())
	}
}

// oracle re-derives misuse from the events and the reference data alone,
// with CONTRACT §4's defaults.
type oracle struct {
	w          *world
	x          *reference.Index
	d          *reference.Data
	violations []violation

	open     map[string]*openSess // actor → open session
	devOpen  map[string]*openSess // shared device → open session
	fails    map[string][]failAt
	lastNet  map[string]netAt
	lastEv   map[string]evAt // session → last event
	subjects map[string][]subjAt
}

type violation struct {
	check, pattern string
	ids            []string
	labels         []*Label
}

type openSess struct {
	id, actor, device, ip string
	last                  time.Time
	lastID                string
	label                 *Label
	locked                bool
}
type failAt struct {
	t     time.Time
	id    string
	label *Label
}
type netAt struct {
	class string
	t     time.Time
	id    string
	label *Label
}
type evAt struct {
	t      time.Time
	action event.Action
	id     string
	label  *Label
}
type subjAt struct {
	t       time.Time
	subject string
	id      string
	label   *Label
}

func newOracle(w *world, x *reference.Index, d *reference.Data) *oracle {
	return &oracle{w: w, x: x, d: d, open: map[string]*openSess{}, devOpen: map[string]*openSess{}, fails: map[string][]failAt{},
		lastNet: map[string]netAt{}, lastEv: map[string]evAt{}, subjects: map[string][]subjAt{}}
}

func (o *oracle) flag(check, pattern string, ids []string, labels ...*Label) {
	o.violations = append(o.violations, violation{check, pattern, ids, labels})
}

func netClass(ip string) string {
	switch {
	case strings.HasPrefix(ip, "10."):
		return "org"
	case strings.HasPrefix(ip, "172."):
		return "partner"
	}
	return "elsewhere"
}

func (o *oracle) see(ev *event.Event, l *Label) {
	a, t, id := ev.Actor.ID, ev.Time, ev.ID
	actorOrg := cmp.Or(ev.Actor.Org, ev.Org) // CONTRACT §2: staff are looked up in the actor's org
	st, ok := o.x.Staff(actorOrg, a)
	if !ok {
		o.flag("unknown", "actor", []string{id}, l)
		return
	}
	// out-of-hours
	if o.x.HasShifts(actorOrg, a) {
		if _, ok := o.x.ShiftAt(actorOrg, a, t, 30*time.Minute); !ok {
			o.flag(CheckOutOfHours, "outside-shift", []string{id}, l)
		}
	} else {
		lt := t.In(london)
		day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, london)
		mins := lt.Hour()*60 + lt.Minute()
		switch {
		case o.w.isBankHoliday(day):
			o.flag(CheckOutOfHours, "bank-holiday", []string{id}, l)
		case !o.w.isWorkday(day) || mins < 8*60 || mins >= 18*60:
			o.flag(CheckOutOfHours, "outside-working-hours", []string{id}, l)
		}
	}
	if !st.ActiveAt(t) {
		o.flag(CheckSharedCredential, "used-after-leaving", []string{id}, l)
	}
	if _, ok := o.x.AbsentAt(actorOrg, a, t); ok {
		o.flag(CheckSharedCredential, "used-while-absent", []string{id}, l)
	}
	if ev.Action.IsRecordAction() {
		if !o.x.HasRelationship(ev.Org, a, ev.Actor.Team, ev.Subject.ID, t) {
			p := "no-relationship"
			for _, r := range o.d.Relationships {
				if r.SubjectID == ev.Subject.ID && (r.ActorID == a || (r.Team != "" && r.Team == ev.Actor.Team)) && !r.ValidTo.IsZero() && !r.ValidTo.After(t) {
					p = "relationship-ended"
				}
			}
			o.flag(CheckNoBusinessNeed, p, []string{id}, l)
		}
		if st.External {
			if _, ok := o.x.SharingAgreementFor(st.Org, ev.Org, ev.Record.Type, string(ev.Action), t); !ok {
				o.flag(CheckNoBusinessNeed, "outside-sharing-agreement", []string{id}, l)
			}
		}
		// bulk: 25 distinct subjects within an hour
		list := append(o.subjects[a], subjAt{t, ev.Subject.ID, id, l})
		for len(list) > 0 && t.Sub(list[0].t) > time.Hour {
			list = list[1:]
		}
		o.subjects[a] = list
		distinct := map[string]bool{}
		var labels []*Label
		for _, s := range list {
			distinct[s.subject] = true
			labels = append(labels, s.label)
		}
		if len(distinct) >= 25 {
			o.flag(CheckBulkAccess, "bulk-access", []string{id}, labels...)
		}
	}
	if ev.Action == event.ActionLogin && st.External && (ev.Session.MFA == nil || !*ev.Session.MFA) {
		o.flag(CheckSharedCredential, "external-without-mfa", []string{id}, l)
	}
	if ev.Action == event.ActionLoginFailed {
		f := append(o.fails[a], failAt{t, id, l})
		for len(f) > 0 && t.Sub(f[0].t) > 10*time.Minute {
			f = f[1:]
		}
		o.fails[a] = f
		if len(f) >= 5 {
			var labels []*Label
			for _, x := range f {
				labels = append(labels, x.label)
			}
			o.flag(CheckSharedCredential, "failed-login-burst", []string{id}, labels...)
		}
		return
	}
	// impossible travel: the network class changes within an hour.
	if n, ok := o.lastNet[a]; ok && n.class != netClass(ev.Session.IP) && t.Sub(n.t) < time.Hour {
		o.flag(CheckSharedCredential, "impossible-travel", []string{n.id, id}, n.label, l)
	}
	o.lastNet[a] = netAt{netClass(ev.Session.IP), t, id, l}

	// unlocked gap inside a session
	limit := 30 * time.Minute
	if dv, ok := o.x.Device(ev.Org, ev.Session.Device); ok && dv.Kind == reference.DeviceSharedTablet {
		limit = 10 * time.Minute
	}
	if p, ok := o.lastEv[ev.Session.ID]; ok {
		closing := p.action == event.ActionLock || p.action == event.ActionLogout || p.action == event.ActionTimeout
		if !closing && t.Sub(p.t) > limit {
			o.flag(CheckUnlockedSession, "unlocked-gap", []string{p.id, id}, p.label, l)
		}
	}
	o.lastEv[ev.Session.ID] = evAt{t, ev.Action, id, l}

	// concurrent sessions of one account
	if cur := o.open[a]; cur != nil {
		if t.Sub(cur.last) > 30*time.Minute {
			delete(o.open, a)
		} else if cur.id != ev.Session.ID && (cur.device != ev.Session.Device || cur.ip != ev.Session.IP) {
			o.flag(CheckSharedCredential, "concurrent-sessions", []string{cur.lastID, id}, cur.label, l)
		}
	}
	// another account on a shared device whose session is open and unlocked
	dev := ev.Session.Device
	if dv, ok := o.x.Device(ev.Org, dev); ok && dev != "" && o.shared(dv) {
		if cur := o.devOpen[dev]; cur != nil && cur.actor != a && !cur.locked && t.Sub(cur.last) <= 30*time.Minute {
			o.flag(CheckUnlockedSession, "device-handover", []string{cur.lastID, id}, cur.label, l)
		}
	}
	switch ev.Action {
	case event.ActionLogout, event.ActionTimeout:
		if cur := o.open[a]; cur != nil && cur.id == ev.Session.ID {
			delete(o.open, a)
		}
		if cur := o.devOpen[dev]; cur != nil && cur.id == ev.Session.ID {
			delete(o.devOpen, dev)
		}
	default:
		s := o.open[a]
		if s == nil || s.id != ev.Session.ID {
			if ev.Action == event.ActionLogin || s == nil {
				s = &openSess{id: ev.Session.ID, actor: a, device: dev, ip: ev.Session.IP}
				o.open[a] = s
			}
		}
		if s.id == ev.Session.ID {
			s.last, s.lastID, s.label = t, id, l
			s.locked = ev.Action == event.ActionLock
		}
		if dev != "" {
			if ds := o.devOpen[dev]; ds == nil || ds.id != ev.Session.ID {
				if ev.Action == event.ActionLogin || ds == nil {
					o.devOpen[dev] = s
				}
			}
		}
	}
}

func (o *oracle) finish() {}

// shared: a tablet, or a device assigned to a team or to nobody.
func (o *oracle) shared(d reference.Device) bool {
	_, personal := o.x.Staff(d.Org, d.AssignedTo)
	return d.Kind == reference.DeviceSharedTablet || !personal
}

func fmtLabels(ls []*Label) string {
	var b strings.Builder
	for _, l := range ls {
		if l == nil {
			b.WriteString("[background]")
		} else {
			fmt.Fprintf(&b, "[%s %s/%s]", l.Episode, l.Check, l.Pattern)
		}
	}
	return b.String()
}
