package simulate

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
)

var (
	internalActions = []event.Action{event.ActionView, event.ActionView, event.ActionView, event.ActionView, event.ActionView,
		event.ActionView, event.ActionUpdate, event.ActionUpdate, event.ActionCreate, event.ActionSearch}
	rareActions = []event.Action{event.ActionPrint, event.ActionShare, event.ActionExport}
)

func scaled(n int, s float64) int { return max(1, int(math.Round(float64(n)*s))) }

func daysBefore(w *world, rng *rand.Rand, lo, hi int) time.Time {
	return w.day(-lo - rng.IntN(hi-lo+1))
}

func stringsToActions(ss []string) []event.Action {
	out := make([]event.Action, len(ss))
	for i, s := range ss {
		out[i] = event.Action(s)
	}
	return out
}

// genAbsences gives a share of actors one absence in or around the period.
func genAbsences(w *world, a *actor, rng *rand.Rand, p float64) {
	if rng.Float64() >= p {
		return
	}
	start := rng.IntN(w.days+3) - 2
	n := 1 + rng.IntN(4)
	kinds := []string{"leave", "sickness", "training"}
	k := kinds[rng.IntN(len(kinds))]
	if k == "training" {
		n = 1
	}
	a.absences = append(a.absences, window{w.day(start), w.day(start + n)})
	w.ref.Absences = append(w.ref.Absences, reference.Absence{ActorID: a.id, Start: w.day(start), End: w.day(start + n), Kind: k})
}

// buildStMartins models Webster Court: 32 residents over 50, a 24/7 rota of
// day, late and night shifts, two office workers, a leaver, partner-agency
// workers under sharing agreements, shared PIN tablets.
func buildStMartins(o Options) *world {
	w := newWorld(o, OrgStMartins, "logmycare", "lmc-")
	w.ref = &reference.Data{}
	rng := w.rng
	const team = "webster-court"
	for rt, p := range map[string]string{"care-plan": "cp", "daily-note": "dn", "risk-assessment": "ra", "incident": "inc",
		"safeguarding-concern": "sg", "medication": "med", "appointment": "apt", "complaint": "cmp"} {
		w.recordPrefix[rt] = p
	}
	types := []string{"care-plan", "daily-note", "daily-note", "daily-note", "risk-assessment", "incident", "safeguarding-concern", "medication", "medication", "appointment", "complaint"}
	tags := [][]string{nil, nil, {"safeguarding"}, {"mental-health"}, {"substance-misuse"}, {"offending"}, {"offending", "substance-misuse"}, {"mental-health", "safeguarding"}}
	nRes := scaled(32, o.Scale)
	first := w.addSubjects(nRes, "c-", 4, func(i int) []string { return tags[(i*5+rng.IntN(3))%len(tags)] })
	formerFirst := w.addSubjects(6, "c-", 4, func(i int) []string { return tags[i%len(tags)] })
	var residents []int32
	for i := range int32(nRes) {
		s := first + i
		residents = append(residents, s)
		w.ref.Relationships = append(w.ref.Relationships, reference.Relationship{Team: team, SubjectID: w.subjects[s], Relation: "resident", ValidFrom: daysBefore(w, rng, 20, 1200)})
	}
	for i := range int32(6) {
		s := formerFirst + i
		left := daysBefore(w, rng, 3, 120)
		w.former = append(w.former, s)
		w.formerOf[s] = team
		w.ref.Relationships = append(w.ref.Relationships, reference.Relationship{Team: team, SubjectID: w.subjects[s], Relation: "resident", ValidFrom: left.AddDate(-2, 0, 0), ValidTo: left})
	}

	loc := "webster-court"
	for i := range 6 {
		w.addDevice("tab-"+pad(i+1, 2), reference.DeviceSharedTablet, "10.2.0."+strconv.Itoa(21+i), loc, team, true)
	}
	for i := range 2 {
		w.addDevice("dt-"+pad(i+1, 2), reference.DeviceDesktop, "10.2.0."+strconv.Itoa(11+i), loc, team, true)
	}

	n := 0
	newActor := func(role string, rostered bool) *actor {
		n++
		a := &actor{n: n, id: "u-" + pad(n, 2), role: role, team: team, org: OrgStMartins, rostered: rostered, office: !rostered,
			loc: loc, activeFrom: daysBefore(w, rng, 30, 1500), teamSubjects: residents, recordTypes: types, actions: internalActions}
		w.actors = append(w.actors, a)
		return a
	}
	mgr := newActor("registered-manager", false)
	sdc := newActor("system-data-coordinator", false)
	mgr.dev = w.addDevice("dt-mgr", reference.DeviceDesktop, "10.2.0.5", loc, mgr.id, false)
	sdc.dev = w.addDevice("dt-sdc", reference.DeviceDesktop, "10.2.0.6", loc, sdc.id, false)
	admin := newActor("administrator", false)
	admin.leaver = true
	admin.activeFrom = daysBefore(w, rng, 400, 900)
	admin.activeTo = daysBefore(w, rng, 5, 60)
	var days, nights []*actor
	for range scaled(4, o.Scale) {
		days = append(days, newActor("senior-support-worker", true))
	}
	for range scaled(14, o.Scale) {
		days = append(days, newActor("support-worker", true))
	}
	for range scaled(5, o.Scale) {
		nights = append(nights, newActor("night-support-worker", true))
	}
	// Keyworkers: each resident has one.
	for i, s := range residents {
		kw := days[i%len(days)]
		kw.own = append(kw.own, s)
		w.ref.Relationships = append(w.ref.Relationships, reference.Relationship{ActorID: kw.id, SubjectID: w.subjects[s], Relation: "keyworker", ValidFrom: daysBefore(w, rng, 20, 600)})
	}
	for i, s := range w.former {
		kw := days[i%len(days)]
		left := w.ref.Relationships[nRes+i].ValidTo
		w.ref.Relationships = append(w.ref.Relationships, reference.Relationship{ActorID: kw.id, SubjectID: w.subjects[s], Relation: "keyworker", ValidFrom: left.AddDate(-1, 0, 0), ValidTo: left})
	}
	// Partner agencies under information sharing agreements.
	partners := []struct {
		org, role, tag string
		types, acts    []string
		users          int
	}{
		{"turning-point", "drug-treatment-worker", "substance-misuse", []string{"care-plan", "risk-assessment", "appointment"}, []string{"view", "create", "update"}, 2},
		{"probation-service", "probation-officer", "offending", []string{"risk-assessment", "incident"}, []string{"view"}, 2},
	}
	for pi, p := range partners {
		w.ref.SharingAgreements = append(w.ref.SharingAgreements, reference.SharingAgreement{PartnerOrg: p.org, Org: OrgStMartins, RecordTypes: p.types, Actions: p.acts, ValidFrom: daysBefore(w, rng, 200, 700)})
		var clients []int32
		for _, s := range residents {
			if slices.Contains(w.sens[s], p.tag) {
				clients = append(clients, s)
			}
		}
		for u := range p.users {
			n++
			a := &actor{n: n, id: "p-" + pad(pi*10+u+1, 2), role: p.role, team: p.org, org: p.org, external: true, office: true,
				loc: p.org, ip: "172." + strconv.Itoa(20+pi) + ".4." + strconv.Itoa(10+u), activeFrom: daysBefore(w, rng, 60, 600),
				recordTypes: p.types, actions: stringsToActions(p.acts), perDay: 0.6}
			for i, s := range clients {
				if i%p.users == u {
					a.own = append(a.own, s)
					w.ref.Relationships = append(w.ref.Relationships, reference.Relationship{ActorID: a.id, SubjectID: w.subjects[s], Relation: "referral", ValidFrom: daysBefore(w, rng, 10, 300)})
				}
			}
			w.actors = append(w.actors, a)
		}
	}

	for _, a := range w.actors {
		if !a.leaver {
			genAbsences(w, a, rng, 0.25)
		}
	}
	// The coordinator has a training day in the period, so that
	// used-while-absent has an office worker to borrow from.
	if !slices.ContainsFunc(w.ref.Absences, func(ab reference.Absence) bool {
		return ab.ActorID == sdc.id && ab.End.After(w.from) && ab.Start.Before(w.end)
	}) {
		for d := 0; d < w.days; d++ {
			if w.isWorkday(w.day(d)) && d > 0 {
				sdc.absences = append(sdc.absences, window{w.day(d), w.day(d + 1)})
				w.ref.Absences = append(w.ref.Absences, reference.Absence{ActorID: sdc.id, Start: w.day(d), End: w.day(d + 1), Kind: "training"})
				break
			}
		}
	}

	// The rota: day 07:00–15:00, late 14:30–22:30, night 22:00–07:30 (over
	// midnight), from the day before the period so that the first night is
	// covered.
	type slot struct{ sh, sm, eh, em, nextDay int }
	daySlots := []slot{{7, 0, 15, 0, 0}, {7, 0, 15, 0, 0}, {7, 0, 15, 0, 0}, {14, 30, 22, 30, 0}, {14, 30, 22, 30, 0}, {14, 30, 22, 30, 0}}
	nightSlots := []slot{{22, 0, 7, 30, 1}, {22, 0, 7, 30, 1}}
	roster := func(pool []*actor, slots []slot, perDay int) {
		k := 0
		for d := -1; d <= w.days; d++ {
			used := map[*actor]bool{}
			for _, sl := range slots[:perDay] {
				win := window{w.at(d, sl.sh, sl.sm), w.at(d+sl.nextDay, sl.eh, sl.em)}
				for try := 0; try < len(pool); try++ {
					a := pool[k%len(pool)]
					k++
					if used[a] || a.absentDuring(window{win.start.Add(-time.Hour), win.end.Add(time.Hour)}) || restless(a, win) {
						continue
					}
					used[a] = true
					a.shifts = append(a.shifts, win)
					break
				}
			}
		}
	}
	roster(days, daySlots, min(len(daySlots), max(2, len(days)/3)))
	roster(nights, nightSlots, min(2, len(nights)))

	for _, a := range w.actors {
		switch {
		case a.rostered:
			w.shiftWindows(a, rng)
		case a.external:
			w.officeWindows(a, rng, a.perDay)
		case !a.leaver:
			w.officeWindows(a, rng, 0.95)
		}
	}
	return w
}

// restless reports whether a shift would leave under 8 hours' rest after
// the actor's previous shift (or overlap it).
func restless(a *actor, win window) bool {
	if len(a.shifts) == 0 {
		return false
	}
	last := a.shifts[len(a.shifts)-1]
	return win.start.Before(last.end.Add(8 * time.Hour))
}

// buildWiltshire models the council's children's case management: about
// 105,000 children held by service teams, ~1,500 office staff with laptops
// and team hot desks, an emergency duty team on a night and weekend rota,
// and partner agencies (police, health, schools) through the portal with
// MFA and sharing agreements.
func buildWiltshire(o Options) *world {
	w := newWorld(o, OrgWiltshire, "liquidlogic", "lql-")
	w.ref = &reference.Data{}
	rng := w.rng
	for rt, p := range map[string]string{"case-note": "cn", "assessment": "as", "child-protection-plan": "cpp", "referral": "ref",
		"strategy-discussion": "sd", "health-assessment": "ha", "early-help-assessment": "eha", "ehcp": "ehcp", "attendance": "att",
		"placement": "pl", "pathway-plan": "pp", "admission": "adm", "funding": "fund", "fostering-assessment": "fa"} {
		w.recordPrefix[rt] = p
	}
	sites := []struct{ name, net string }{{"trowbridge", "10.10"}, {"chippenham", "10.20"}, {"salisbury", "10.30"}, {"devizes", "10.40"}}
	teams := []struct {
		name, role string
		staff      int
		children   int
		types      []string
	}{
		{"mash", "social-worker", 60, 4000, []string{"referral", "case-note", "strategy-discussion", "assessment"}},
		{"child-protection", "social-worker", 220, 3000, []string{"case-note", "child-protection-plan", "assessment", "strategy-discussion"}},
		{"children-in-care", "social-worker", 180, 1000, []string{"case-note", "placement", "assessment", "health-assessment"}},
		{"care-leavers", "personal-adviser", 60, 1000, []string{"case-note", "pathway-plan"}},
		{"early-help", "family-support-worker", 250, 15000, []string{"early-help-assessment", "case-note"}},
		{"sen", "sen-officer", 200, 25000, []string{"ehcp", "case-note", "assessment"}},
		{"education-welfare", "education-welfare-officer", 120, 20000, []string{"attendance", "case-note"}},
		{"fostering", "fostering-social-worker", 80, 500, []string{"fostering-assessment", "placement", "case-note"}},
		{"admissions", "admissions-officer", 100, 25000, []string{"admission", "case-note"}},
		{"early-years", "early-years-officer", 100, 10000, []string{"funding", "attendance"}},
		{"virtual-school", "virtual-school-officer", 40, 500, []string{"attendance", "assessment", "case-note"}},
	}
	tagSets := [][]string{nil, nil, nil, nil, {"safeguarding"}, {"child-protection"}, {"looked-after"}, {"sen"}, {"mental-health"}, {"cse-risk", "safeguarding"}}
	teamCases := map[string][]int32{}
	for ti, t := range teams {
		nc := 0
		if t.children > 0 {
			nc = scaled(t.children, o.Scale)
		}
		first := w.addSubjects(nc, "ch-", 6, func(i int) []string { return tagSets[(ti+i*7)%len(tagSets)] })
		cases := make([]int32, nc)
		for i := range cases {
			cases[i] = first + int32(i)
			w.ref.Relationships = append(w.ref.Relationships, reference.Relationship{Team: t.name, SubjectID: w.subjects[cases[i]], Relation: "case", ValidFrom: daysBefore(w, rng, 1, 2000)})
		}
		teamCases[t.name] = cases
		// Closed cases: every row ended before the period.
		for i := range max(1, nc/100) {
			s := w.addSubjects(1, "ch-", 6, func(int) []string { return tagSets[(ti+i)%len(tagSets)] })
			closed := daysBefore(w, rng, 2, 200)
			w.former = append(w.former, s)
			w.formerOf[s] = t.name
			w.ref.Relationships = append(w.ref.Relationships, reference.Relationship{Team: t.name, SubjectID: w.subjects[s], Relation: "case", ValidFrom: closed.AddDate(-1, 0, 0), ValidTo: closed})
		}
	}
	n := 0
	for ti, t := range teams {
		site := sites[ti%len(sites)]
		var members []*actor
		for range scaled(t.staff, o.Scale) {
			n++
			a := &actor{n: n, id: "wc-" + pad(n, 5), role: t.role, team: t.name, org: OrgWiltshire, office: true, loc: site.name,
				activeFrom: daysBefore(w, rng, 30, 3000), teamSubjects: teamCases[t.name], recordTypes: t.types, actions: internalActions}
			if rng.IntN(60) == 0 {
				a.leaver = true
				a.activeTo = daysBefore(w, rng, 3, 60)
				a.activeFrom = a.activeTo.AddDate(-1-rng.IntN(5), 0, 0)
			}
			a.dev = w.addDevice("lt-"+pad(n, 5), reference.DeviceLaptop, site.net+"."+strconv.Itoa(n/250)+"."+strconv.Itoa(n%250+2), site.name, a.id, false)
			if rng.IntN(5) == 0 {
				w.addDevice("mb-"+pad(n, 5), reference.DeviceMobile, "10.50."+strconv.Itoa(n/250)+"."+strconv.Itoa(n%250+2), site.name, a.id, false)
			}
			members = append(members, a)
			w.actors = append(w.actors, a)
		}
		for i := range 2 {
			w.addDevice("dt-"+t.name+"-"+strconv.Itoa(i+1), reference.DeviceDesktop, site.net+".200."+strconv.Itoa(ti*4+i+2), site.name, t.name, true)
		}
		// Allocations: a third of the team's cases have an allocated worker.
		cases := teamCases[t.name]
		{
			for i := 0; i < len(cases); i += 3 {
				a := members[rng.IntN(len(members))]
				a.own = append(a.own, cases[i])
				from := daysBefore(w, rng, 1, 700)
				rel := reference.Relationship{ActorID: a.id, SubjectID: w.subjects[cases[i]], Relation: "allocated-worker", ValidFrom: from}
				if a.leaver { // the allocation ended when they left
					rel.ValidFrom = minTime(from, a.activeTo.AddDate(0, 0, -30))
					rel.ValidTo = a.activeTo
				}
				w.ref.Relationships = append(w.ref.Relationships, rel)
			}
		}
	}
	// Emergency duty team: nights and weekends by rota, covering the open
	// social-care cases through team rows.
	var edtCases []int32
	for _, tn := range []string{"mash", "child-protection", "children-in-care", "care-leavers"} {
		edtCases = append(edtCases, teamCases[tn]...)
	}
	for _, s := range edtCases {
		w.ref.Relationships = append(w.ref.Relationships, reference.Relationship{Team: "emergency-duty", SubjectID: w.subjects[s], Relation: "out-of-hours-cover", ValidFrom: daysBefore(w, rng, 1, 365)})
	}
	var edt []*actor
	for range scaled(30, o.Scale) {
		n++
		a := &actor{n: n, id: "wc-" + pad(n, 5), role: "emergency-duty-team", team: "emergency-duty", org: OrgWiltshire, rostered: true,
			loc: "trowbridge", activeFrom: daysBefore(w, rng, 30, 3000), teamSubjects: edtCases, recordTypes: []string{"case-note", "strategy-discussion", "referral"}, actions: internalActions}
		a.dev = w.addDevice("lt-"+pad(n, 5), reference.DeviceLaptop, "10.10."+strconv.Itoa(n/250)+"."+strconv.Itoa(n%250+2), "trowbridge", a.id, false)
		edt = append(edt, a)
		w.actors = append(w.actors, a)
	}
	// Partner agencies through the portal.
	partners := []struct {
		org, role string
		users     int
		types     []string
		acts      []string
		from      []string
	}{
		{"wiltshire-police", "police-officer", 30, []string{"referral", "strategy-discussion"}, []string{"view", "create", "update"}, []string{"mash", "child-protection"}},
		{"bsw-health", "health-visitor", 60, []string{"health-assessment", "early-help-assessment", "referral"}, []string{"view", "create", "update"}, []string{"early-help", "children-in-care"}},
		{"wiltshire-schools", "designated-safeguarding-lead", 80, []string{"early-help-assessment", "attendance"}, []string{"view", "create", "update"}, []string{"early-help", "education-welfare"}},
	}
	for pi, p := range partners {
		w.ref.SharingAgreements = append(w.ref.SharingAgreements, reference.SharingAgreement{PartnerOrg: p.org, Org: OrgWiltshire, RecordTypes: p.types, Actions: p.acts, ValidFrom: daysBefore(w, rng, 100, 900)})
		for u := range scaled(p.users, o.Scale) {
			n++
			a := &actor{n: n, id: "pt-" + pad(n, 5), role: p.role, team: p.org, org: p.org, external: true, office: true, loc: p.org,
				ip: "172." + strconv.Itoa(20+pi) + "." + strconv.Itoa(u/250) + "." + strconv.Itoa(u%250+2), activeFrom: daysBefore(w, rng, 30, 900),
				recordTypes: p.types, actions: stringsToActions(p.acts), perDay: 0.5}
			for range 10 + rng.IntN(30) {
				pool := teamCases[p.from[rng.IntN(len(p.from))]]
				s := pool[rng.IntN(len(pool))]
				if slices.Contains(a.own, s) {
					continue
				}
				a.own = append(a.own, s)
				w.ref.Relationships = append(w.ref.Relationships, reference.Relationship{ActorID: a.id, SubjectID: w.subjects[s], Relation: "delegated-form", ValidFrom: daysBefore(w, rng, 1, 300)})
			}
			w.actors = append(w.actors, a)
		}
	}
	for _, a := range w.actors {
		if !a.leaver {
			genAbsences(w, a, rng, 0.12*float64(w.days)/7)
		}
	}
	// EDT rota: weekday nights 17:00–08:30; weekends and bank holidays
	// also a day shift 08:30–17:00. Two workers a shift (scaled).
	perShift := min(len(edt), max(1, scaled(2, o.Scale)))
	k := 0
	for d := -1; d <= w.days; d++ {
		var slots []window
		if !w.isWorkday(w.day(d)) {
			slots = append(slots, window{w.at(d, 8, 30), w.at(d, 17, 0)})
		}
		slots = append(slots, window{w.at(d, 17, 0), w.at(d+1, 8, 30)})
		for _, win := range slots {
			for range perShift {
				for try := 0; try < len(edt); try++ {
					a := edt[k%len(edt)]
					k++
					if a.absentDuring(window{win.start.Add(-time.Hour), win.end.Add(time.Hour)}) || restless(a, win) {
						continue
					}
					a.shifts = append(a.shifts, win)
					break
				}
			}
		}
	}
	for _, a := range w.actors {
		switch {
		case a.rostered:
			w.shiftWindows(a, rng)
		case a.external:
			w.officeWindows(a, rng, a.perDay)
		case !a.leaver:
			w.officeWindows(a, rng, 0.9)
		}
	}
	return w
}
