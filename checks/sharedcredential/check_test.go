package sharedcredential

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/checks/nobusinessneed"
	"github.com/dpiawatch/dpiawatch/checks/outofhours"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/rulestest"
)

// The roster and sites the shared-credential cases run against.
var (
	scStaff = append([]reference.Staff{
		{ActorID: "u-60", Org: rulestest.Org, Role: "administrator", Team: "office", ActiveFrom: rulestest.LT("2024-01-01 00:00:00"), ActiveTo: rulestest.LT("2026-03-02 00:00:00")},
		{ActorID: "u-61", Org: rulestest.Org, Role: "support-worker", Team: "webster-court", ActiveFrom: rulestest.LT("2026-03-16 00:00:00")},
		{ActorID: "p-01", Org: "turning-point", Role: "drug-treatment-worker", Team: "turning-point", External: true},
		{ActorID: "u-62", Org: rulestest.Org, Role: "agency-carer", Team: "webster-court", External: true},
	}, rulestest.JudgeStaff...)
	scAbsences = []reference.Absence{
		{ActorID: "u-40", Start: rulestest.LT("2026-03-12 00:00:00"), End: rulestest.LT("2026-03-14 00:00:00"), Kind: "sickness"},
		{ActorID: "u-41", Start: rulestest.LT("2026-03-12 00:00:00"), End: rulestest.LT("2026-03-13 00:00:00"), Kind: "training"},
		{ActorID: "u-17", Start: rulestest.LT("2026-03-20 00:00:00"), Kind: "leave"}, // open-ended
	}
	scDevices = []reference.Device{
		{DeviceID: "tab-01", Org: rulestest.Org, Kind: reference.DeviceSharedTablet},
		{DeviceID: "tab-02", Org: rulestest.Org, Kind: reference.DeviceSharedTablet},
		{DeviceID: "dt-01", Org: rulestest.Org, Kind: reference.DeviceDesktop},
	}
	scSites = []Site{
		{Name: "webster-court", Networks: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")}, Located: true, Lat: 52.628, Lon: 1.297},
		{Name: "kings-lynn", Networks: []netip.Prefix{netip.MustParsePrefix("10.4.0.0/24")}, Located: true, Lat: 52.754, Lon: 0.398},
		{Name: "vpn", Networks: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}},
		// A narrower range inside another site's wins.
		{Name: "annexe", Networks: []netip.Prefix{netip.MustParsePrefix("10.2.0.128/25")}, Located: true, Lat: 52.628, Lon: 1.297},
	}
)

func scRoster() *rulestest.FakeRoster {
	r := rulestest.NewFakeRoster(scStaff, rulestest.JudgeShifts)
	r.Index = reference.NewIndex(&reference.Data{Absences: scAbsences, Devices: scDevices})
	return r
}

func scTestPolicy() rules.OrgPolicy {
	p := rulestest.Policy()
	p.Risks = map[string][]rules.RiskRef{}
	scOf(&p).Sites = scSites
	return p
}

// on sets the session of an event.
func scOn(id, device, ip string) rulestest.EvOpt {
	return func(e *event.Event) { e.Session.ID, e.Session.Device, e.Session.IP = id, device, ip }
}
func scMFA(b bool) rulestest.EvOpt        { return func(e *event.Event) { e.Session.MFA = &b } }
func actorOrg(org string) rulestest.EvOpt { return func(e *event.Event) { e.Actor.Org = org } }
func loginFailure() rulestest.EvOpt       { return func(e *event.Event) { e.Outcome = event.OutcomeFailure } }
func scAt(clock string) time.Time         { return rulestest.LT("2026-03-09 " + clock) }

func TestSharedCredentialJudgement(t *testing.T) {
	login, view, logout := event.ActionLogin, event.ActionView, event.ActionLogout
	failedLogin := event.ActionLoginFailed
	ev := rulestest.Event
	burst := func(actor string, n int, step time.Duration, opts ...rulestest.EvOpt) []event.Event {
		var out []event.Event
		for i := range n {
			out = append(out, ev(fmt.Sprintf("f%d", i+1), actor, scAt("10:00:00").Add(time.Duration(i)*step), failedLogin, opts...))
		}
		return out
	}
	cases := []struct {
		name     string
		policy   func(*rules.OrgPolicy)
		events   []event.Event
		want     []string // "pattern: event ids", sorted
		severity alert.Severity
	}{
		// Concurrent sessions (CONTRACT §4).
		{name: "second device while the first is open", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), login, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:02:00"), view, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e3", "u-17", scAt("10:05:00"), login, scOn("s2", "tab-02", "10.2.0.22")),
			ev("e4", "u-17", scAt("10:06:00"), view, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e5", "u-17", scAt("10:07:00"), logout, scOn("s2", "tab-02", "10.2.0.22")),
			ev("e6", "u-17", scAt("10:08:00"), view, scOn("s1", "tab-01", "10.2.0.21")),
		}, want: []string{"concurrent-sessions: e2 e3 e4"}},
		{name: "logout then another device", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), login, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:05:00"), logout, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e3", "u-17", scAt("10:05:00"), login, scOn("s2", "tab-02", "10.2.0.22")),
		}},
		{name: "timeout then another device", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), login, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:05:00"), event.ActionTimeout, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e3", "u-17", scAt("10:06:00"), login, scOn("s2", "tab-02", "10.2.0.22")),
		}},
		{name: "lock does not close a session", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), login, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:05:00"), event.ActionLock, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e3", "u-17", scAt("10:06:00"), login, scOn("s2", "dt-01", "10.2.0.11")),
		}, want: []string{"concurrent-sessions: e2 e3"}},
		{name: "no logout: closed exactly 30m after the last action", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), view, scOn("s1", "dt-01", "10.2.0.11")),
			ev("e2", "u-17", scAt("10:30:00"), login, scOn("s2", "tab-02", "10.2.0.22")),
		}},
		{name: "no logout: open a second before", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), view, scOn("s1", "dt-01", "10.2.0.11")),
			ev("e2", "u-17", scAt("10:29:59"), login, scOn("s2", "tab-02", "10.2.0.22")),
		}, want: []string{"concurrent-sessions: e1 e2"}},
		{name: "device kind timeout", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), view, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:15:00"), login, scOn("s2", "dt-01", "10.2.0.11")),
		}, policy: func(p *rules.OrgPolicy) {
			scOf(p).DeviceKinds = map[string]time.Duration{reference.DeviceSharedTablet: 10 * time.Minute}
		}},
		{name: "role timeout", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), view, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:15:00"), login, scOn("s2", "dt-01", "10.2.0.11")),
		}, policy: func(p *rules.OrgPolicy) {
			scOf(p).Roles = map[string]Knobs{"support-worker": {SessionTimeout: 10 * time.Minute}}
		}},
		{name: "same device, new session: a re-login", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), login, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:01:00"), login, scOn("s2", "tab-01", "10.2.0.23")),
			ev("e3", "u-17", scAt("10:02:00"), login, scOn("s3", "tab-02", "10.2.0.22")),
		}, want: []string{"concurrent-sessions: e2 e3"}},
		{name: "no device: told apart by IP", events: []event.Event{
			ev("e1", "p-01", scAt("10:00:00"), login, scOn("s1", "", "172.20.4.10")),
			ev("e2", "p-01", scAt("10:01:00"), login, scOn("s2", "", "172.20.4.11")),
		}, want: []string{"concurrent-sessions: e1 e2"}},
		{name: "no session id: keyed by device and IP", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), view, scOn("", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:01:00"), view, scOn("", "tab-02", "10.2.0.22")),
		}, want: []string{"concurrent-sessions: e1 e2"}},
		{name: "no session information", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), view),
			ev("e2", "u-17", scAt("10:01:00"), view),
		}},
		{name: "failed login elsewhere is not acting", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), login, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:01:00"), failedLogin, scOn("s2", "tab-02", "10.2.0.22")),
		}},
		{name: "sensitive subject raises severity", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), login, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:01:00"), view, scOn("s2", "tab-02", "10.2.0.22"), rulestest.Subject("c-9", "safeguarding")),
		}, want: []string{"concurrent-sessions: e1 e2"}, severity: alert.SeverityHigh},
		{name: "pattern disabled", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), login, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:01:00"), login, scOn("s2", "tab-02", "10.2.0.22")),
		}, policy: func(p *rules.OrgPolicy) { scOf(p).DisabledPatterns = []string{PatternConcurrentSessions} }},
		{name: "team re-enables a pattern", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), login, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:01:00"), login, scOn("s2", "tab-02", "10.2.0.22")),
		}, want: []string{"concurrent-sessions: e1 e2"}, policy: func(p *rules.OrgPolicy) {
			scOf(p).DisabledPatterns = []string{PatternConcurrentSessions}
			scOf(p).Teams = map[string]Knobs{"webster-court": {DisabledPatterns: []string{}}}
		}},
		{name: "exempt team", events: []event.Event{
			ev("e1", "u-17", scAt("10:00:00"), login, scOn("s1", "tab-01", "10.2.0.21")),
			ev("e2", "u-17", scAt("10:01:00"), login, scOn("s2", "tab-02", "10.2.0.22")),
		}, policy: func(p *rules.OrgPolicy) {
			scOf(p).Teams = map[string]Knobs{"webster-court": {Exempt: new(true)}}
		}},

		// Impossible travel.
		{name: "site then off-site minutes later", events: []event.Event{
			ev("e1", "u-40", scAt("10:00:00"), login, scOn("s1", "dt-01", "10.2.0.11")),
			ev("e2", "u-40", scAt("10:05:00"), logout, scOn("s1", "dt-01", "10.2.0.11")),
			ev("e3", "u-40", scAt("10:11:00"), login, scOn("s2", "", "203.0.113.7")),
			ev("e4", "u-40", scAt("10:12:00"), view, scOn("s2", "", "203.0.113.7")),
			ev("e5", "u-40", scAt("10:40:00"), view, scOn("s2", "", "203.0.113.7")),
		}, want: []string{"impossible-travel: e2 e3 e4"}},
		{name: "off-site after the travel time", events: []event.Event{
			ev("e1", "u-40", scAt("10:00:00"), login, scOn("s1", "dt-01", "10.2.0.11")),
			ev("e3", "u-40", scAt("10:30:00"), login, scOn("s2", "", "203.0.113.7")),
		}},
		{name: "off-site travel knob", events: []event.Event{
			ev("e1", "u-40", scAt("10:00:00"), login, scOn("s1", "dt-01", "10.2.0.11")),
			ev("e2", "u-40", scAt("10:00:30"), logout, scOn("s1", "dt-01", "10.2.0.11")),
			ev("e3", "u-40", scAt("10:11:00"), login, scOn("s2", "", "203.0.113.7")),
		}, policy: func(p *rules.OrgPolicy) { scOf(p).OffSiteTravel = new(10 * time.Minute) }},
		{name: "unknown networks ignored", events: []event.Event{
			ev("e1", "u-40", scAt("10:00:00"), login, scOn("s1", "dt-01", "10.2.0.11")),
			ev("e2", "u-40", scAt("10:00:30"), logout, scOn("s1", "dt-01", "10.2.0.11")),
			ev("e3", "u-40", scAt("10:06:00"), login, scOn("s2", "", "203.0.113.7")),
		}, policy: func(p *rules.OrgPolicy) { scOf(p).UnknownNetworks = UnknownNetworksIgnore }},
		{name: "between sites too fast", events: []event.Event{
			ev("e1", "u-40", scAt("10:00:00"), view, scOn("s1", "", "10.2.0.11")),
			ev("e2", "u-40", scAt("10:20:00"), view, scOn("s1", "", "10.4.0.11")), // same session, new place
		}, want: []string{"impossible-travel: e1 e2"}},
		{name: "between sites in time", events: []event.Event{
			ev("e1", "u-40", scAt("10:00:00"), view, scOn("s1", "", "10.2.0.11")),
			ev("e2", "u-40", scAt("10:40:00"), view, scOn("s1", "", "10.4.0.11")),
		}},
		{name: "max speed knob", events: []event.Event{
			ev("e1", "u-40", scAt("10:00:00"), view, scOn("s1", "", "10.2.0.11")),
			ev("e2", "u-40", scAt("10:20:00"), view, scOn("s1", "", "10.4.0.11")),
		}, policy: func(p *rules.OrgPolicy) { scOf(p).MaxSpeedKMH = 300 }},
		{name: "a site without a position is skipped", events: []event.Event{
			ev("e1", "u-40", scAt("10:00:00"), view, scOn("s1", "", "10.2.0.11")),
			ev("e2", "u-40", scAt("10:05:00"), view, scOn("s1", "", "10.9.3.4")),
			ev("e3", "u-40", scAt("10:10:00"), view, scOn("s1", "", "10.4.0.11")),
		}, want: []string{"impossible-travel: e1 e3"}},
		{name: "same position, another site", events: []event.Event{
			ev("e1", "u-40", scAt("10:00:00"), view, scOn("s1", "", "10.2.0.11")),
			ev("e2", "u-40", scAt("10:01:00"), view, scOn("s1", "", "10.2.0.200")),
		}},
		{name: "two unknown networks are one place", events: []event.Event{
			ev("e1", "u-40", scAt("10:00:00"), view, scOn("s1", "", "198.51.100.1")),
			ev("e2", "u-40", scAt("10:01:00"), view, scOn("s1", "", "203.0.113.7")),
		}},
		{name: "no site map: no travel", events: []event.Event{
			ev("e1", "u-40", scAt("10:00:00"), view, scOn("s1", "", "10.2.0.11")),
			ev("e2", "u-40", scAt("10:01:00"), view, scOn("s1", "", "203.0.113.7")),
		}, policy: func(p *rules.OrgPolicy) { scOf(p).Sites = nil }},

		// Used while absent.
		{name: "absent", events: []event.Event{ev("e1", "u-40", rulestest.LT("2026-03-12 10:00:00"), view)}, want: []string{"used-while-absent: e1"}},
		{name: "absent from the first instant", events: []event.Event{ev("e1", "u-40", rulestest.LT("2026-03-12 00:00:00"), login)}, want: []string{"used-while-absent: e1"}},
		{name: "absence over at its end", events: []event.Event{ev("e1", "u-40", rulestest.LT("2026-03-14 00:00:00"), view)}},
		{name: "open-ended absence", events: []event.Event{ev("e1", "u-17", rulestest.LT("2026-05-01 10:00:00"), view)}, want: []string{"used-while-absent: e1"}},
		{name: "ignored absence kind", events: []event.Event{ev("e1", "u-41", rulestest.LT("2026-03-12 10:00:00"), view)},
			policy: func(p *rules.OrgPolicy) { scOf(p).IgnoreAbsenceKinds = []string{"training"} }},
		{name: "logout while absent is not use", events: []event.Event{ev("e1", "u-40", rulestest.LT("2026-03-12 10:00:00"), logout)}},
		{name: "failed login while absent is not use", events: []event.Event{ev("e1", "u-40", rulestest.LT("2026-03-12 10:00:00"), failedLogin)}},

		// Used after leaving (or before starting).
		{name: "after leaving", events: []event.Event{ev("e1", "u-60", rulestest.LT("2026-03-02 00:00:00"), login)}, want: []string{"used-after-leaving: e1"}},
		{name: "last second before leaving", events: []event.Event{ev("e1", "u-60", rulestest.LT("2026-03-01 23:59:59"), login)}},
		{name: "after-leaving allowance", events: []event.Event{ev("e1", "u-60", rulestest.LT("2026-03-02 23:59:59"), login)},
			policy: func(p *rules.OrgPolicy) { scOf(p).AfterLeaving = new(24 * time.Hour) }},
		{name: "after-leaving allowance over", events: []event.Event{ev("e1", "u-60", rulestest.LT("2026-03-03 00:00:00"), login)}, want: []string{"used-after-leaving: e1"},
			policy: func(p *rules.OrgPolicy) { scOf(p).AfterLeaving = new(24 * time.Hour) }},
		{name: "before starting", events: []event.Event{ev("e1", "u-61", rulestest.LT("2026-03-15 23:59:59"), view)}, want: []string{"used-after-leaving: e1"}},
		{name: "from the start", events: []event.Event{ev("e1", "u-61", rulestest.LT("2026-03-16 00:00:00"), view)}},
		// An account on no staff list of an org that has one (CONTRACT §2).
		{name: "unknown account", events: []event.Event{ev("e1", "u-99", scAt("10:00:00"), view)}, want: []string{"unknown-account: e1"}},
		{name: "unknown account off", events: []event.Event{ev("e1", "u-99", scAt("10:00:00"), view)},
			policy: func(p *rules.OrgPolicy) { scOf(p).DisabledPatterns = []string{PatternUnknownAccount} }},

		// Failed-login bursts (CONTRACT §4).
		{name: "five failures in ten minutes", events: burst("u-17", 5, 150*time.Second), want: []string{"failed-login-burst: f1 f2 f3 f4 f5"}},
		{name: "four failures", events: burst("u-17", 4, time.Minute)},
		{name: "five failures over ten minutes and a second", events: append(burst("u-17", 4, 150*time.Second),
			ev("f5", "u-17", scAt("10:10:01"), failedLogin))},
		{name: "burst grows", events: burst("u-17", 7, time.Minute), want: []string{"failed-login-burst: f1 f2 f3 f4 f5 f6 f7"}},
		{name: "failed login outcome counts", events: burst("u-17", 5, time.Minute, func(e *event.Event) { e.Action = login; e.Outcome = event.OutcomeFailure }),
			want: []string{"failed-login-burst: f1 f2 f3 f4 f5"}},
		{name: "threshold knob", events: burst("u-17", 3, time.Minute), want: []string{"failed-login-burst: f1 f2 f3"},
			policy: func(p *rules.OrgPolicy) { scOf(p).FailedLogins = 3 }},
		{name: "window knob", events: burst("u-17", 5, 5*time.Minute), want: []string{"failed-login-burst: f1 f2 f3 f4 f5"},
			policy: func(p *rules.OrgPolicy) { scOf(p).FailedLoginWindow = 20 * time.Minute }},
		{name: "failures of two accounts do not add up", events: append(burst("u-17", 3, time.Minute),
			ev("g1", "u-21", scAt("10:03:00"), failedLogin), ev("g2", "u-21", scAt("10:04:00"), failedLogin))},

		// External users without a second factor.
		{name: "external without MFA", events: []event.Event{ev("e1", "p-01", scAt("10:00:00"), login, scMFA(false))}, want: []string{"external-without-mfa: e1"},
			policy: requireMFA},
		{name: "external with MFA", events: []event.Event{ev("e1", "p-01", scAt("10:00:00"), login, scMFA(true))}, policy: requireMFA},
		{name: "MFA not reported", events: []event.Event{ev("e1", "p-01", scAt("10:00:00"), login)}, policy: requireMFA},
		{name: "MFA not reported counts as missing", events: []event.Event{ev("e1", "p-01", scAt("10:00:00"), login)}, want: []string{"external-without-mfa: e1"},
			policy: func(p *rules.OrgPolicy) { requireMFA(p); scOf(p).UnreportedMFA = new(true) }},
		{name: "MFA not required by the org", events: []event.Event{ev("e1", "p-01", scAt("10:00:00"), login, scMFA(false))}},
		{name: "external by actor.org only", events: []event.Event{ev("e1", "x-01", scAt("10:00:00"), login, scMFA(false), actorOrg("police"))},
			want: []string{"external-without-mfa: e1"}, policy: requireMFA},
		{name: "external staff of the org itself", events: []event.Event{ev("e1", "u-62", scAt("10:00:00"), login, scMFA(false))},
			want: []string{"external-without-mfa: e1"}, policy: requireMFA},
		{name: "internal without MFA", events: []event.Event{ev("e1", "u-17", scAt("10:00:00"), login, scMFA(false))}, policy: requireMFA},
		{name: "only logins need MFA", events: []event.Event{ev("e1", "p-01", scAt("10:00:00"), view, scMFA(false))}, policy: requireMFA},
		{name: "failed login without MFA", events: []event.Event{ev("e1", "p-01", scAt("10:00:00"), login, scMFA(false), loginFailure())}, policy: requireMFA},

		// Severity from the DPIA's score.
		{name: "DPIA score", events: []event.Event{ev("e1", "u-40", rulestest.LT("2026-03-12 10:00:00"), view)}, want: []string{"used-while-absent: e1"}, severity: alert.SeverityHigh,
			policy: func(p *rules.OrgPolicy) {
				scOf(p).Severity = alert.SeverityLow
				p.Risks[Name] = []rules.RiskRef{{ID: "R1", Title: "Inappropriate access to system", Score: "high"}}
			}},
		{name: "configured severity where unscored", events: []event.Event{ev("e1", "u-40", rulestest.LT("2026-03-12 10:00:00"), login)}, want: []string{"used-while-absent: e1"}, severity: alert.SeverityLow,
			policy: func(p *rules.OrgPolicy) {
				scOf(p).Severity = alert.SeverityLow
				p.Risks[Name] = []rules.RiskRef{{ID: "R2"}}
			}},
	}
	var golden strings.Builder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := scTestPolicy()
			if tc.policy != nil {
				tc.policy(&p)
			}
			for _, lateness := range []time.Duration{rules.NoLateness, 0} {
				e := rulestest.NewEngine(t, rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: p}, Roster: scRoster(), Lateness: lateness})
				alerts := map[string]alert.Alert{}
				rulestest.Run(t, e, tc.events, 1, alerts, nil)
				rulestest.Flush(e, alerts, nil)
				var got []string
				var mine []alert.Alert
				for _, a := range rulestest.SortedAlerts(alerts) {
					if a.Check != Name {
						continue
					}
					ids := slices.Clone(a.EventIDs)
					sort.Strings(ids)
					got = append(got, a.Pattern+": "+strings.Join(ids, " "))
					mine = append(mine, a)
				}
				sort.Strings(got)
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("lateness %v: got %q, want %q", lateness, got, tc.want)
				}
				want := cmp.Or(tc.severity, alert.SeverityMedium)
				for _, a := range mine {
					if a.Severity != want {
						t.Errorf("%s: severity %s, want %s", a.Pattern, a.Severity, want)
					}
					if strings.Contains(a.Explanation, "c-9") || strings.Contains(a.Explanation, "203.0") || strings.Contains(a.Explanation, "10.2.") ||
						strings.Contains(a.Explanation, "sickness") {
						t.Errorf("explanation leaks a subject, an address or an absence kind: %s", a.Explanation)
					}
					if lateness == rules.NoLateness {
						fmt.Fprintf(&golden, "%s\n\t%s %s\n\t%s\n", tc.name, a.Pattern, a.Severity, a.Explanation)
					}
				}
			}
		})
	}
	rulestest.CheckGolden(t, "shared-credential.golden", golden.String())
}

func requireMFA(p *rules.OrgPolicy) { scOf(p).ExternalRequiresMFA = new(true) }

// TestSharedCredentialOutOfOrder: events shuffled within the lateness
// bound, or late beyond it, give the alerts of the ordered stream where the
// bound allows, and are never lost.
func TestSharedCredentialOutOfOrder(t *testing.T) {
	events := []event.Event{
		rulestest.Event("f1", "u-17", scAt("09:00:00"), event.ActionLoginFailed),
		rulestest.Event("f2", "u-17", scAt("09:01:00"), event.ActionLoginFailed),
		rulestest.Event("f3", "u-17", scAt("09:02:00"), event.ActionLoginFailed),
		rulestest.Event("f4", "u-17", scAt("09:03:00"), event.ActionLoginFailed),
		rulestest.Event("f5", "u-17", scAt("09:04:00"), event.ActionLoginFailed),
		rulestest.Event("e1", "u-17", scAt("10:00:00"), event.ActionLogin, scOn("s1", "tab-01", "10.2.0.21")),
		rulestest.Event("e2", "u-17", scAt("10:03:00"), event.ActionLogin, scOn("s2", "tab-02", "10.2.0.22")),
		rulestest.Event("e3", "u-17", scAt("10:04:00"), event.ActionLogout, scOn("s1", "tab-01", "10.2.0.21")),
		rulestest.Event("e4", "u-17", scAt("10:05:00"), event.ActionView, scOn("s2", "", "203.0.113.9")),
	}
	summary := func(events []event.Event, lateness time.Duration) string {
		e := rulestest.NewEngine(t, rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: scTestPolicy()}, Roster: scRoster(), Lateness: lateness})
		alerts := map[string]alert.Alert{}
		rulestest.Run(t, e, events, 1, alerts, nil)
		rulestest.Flush(e, alerts, nil)
		var out []string
		for _, a := range rulestest.SortedAlerts(alerts) {
			if a.Check == Name {
				ids := slices.Clone(a.EventIDs)
				sort.Strings(ids)
				out = append(out, a.Pattern+" "+strings.Join(ids, " "))
			}
		}
		return strings.Join(out, "; ")
	}
	want := summary(events, 0)
	if want != "failed-login-burst f1 f2 f3 f4 f5; concurrent-sessions e1 e2; impossible-travel e3 e4" {
		t.Fatalf("in order: %s", want)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		shuffled := slices.Clone(events)
		rng.Shuffle(len(shuffled), func(a, b int) {
			shuffled[a], shuffled[b] = shuffled[b], shuffled[a]
		})
		if got := summary(shuffled, 2*time.Hour); got != want {
			t.Errorf("shuffle %d within the bound: %s", i, got)
		}
	}
	// Late beyond the bound but within the episode gap: judged on
	// arrival, against what is known, with the same outcome.
	late := append(slices.Clone(events[:4]), events[5], events[4])
	late = append(late, events[6:]...)
	if got := summary(late, rules.NoLateness); got != want {
		t.Errorf("fifth failure late: %s", got)
	}
}

// scStream is a seeded stream rich in sessions: workers moving between
// tablets, desktops and the internet, failing to log in, absent, leaving.
func scStream(seed uint64, n int) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 9))
	actors := []string{"u-17", "u-21", "u-40", "u-41", "u-60", "u-61", "p-01", "u-62", "u-99"} // u-99: on no staff list
	devices := []struct{ id, ip string }{{"tab-01", "10.2.0.21"}, {"tab-02", "10.2.0.22"}, {"dt-01", "10.2.0.11"}, {"", "203.0.113.5"}, {"", "10.4.0.7"}}
	actions := []event.Action{event.ActionLogin, event.ActionView, event.ActionView, event.ActionUpdate, event.ActionLogout,
		event.ActionLock, event.ActionTimeout, event.ActionLoginFailed, event.ActionLoginFailed, event.ActionLoginFailed}
	t := rulestest.LT("2026-03-12 06:00:00")
	out := make([]event.Event, 0, n)
	for i := range n {
		t = t.Add(time.Duration(rng.IntN(40)) * time.Second)
		at := t
		if rng.IntN(10) == 0 {
			at = t.Add(-time.Duration(rng.IntN(90)) * time.Minute)
		}
		a := actions[rng.IntN(len(actions))]
		d := devices[rng.IntN(len(devices))]
		actor := actors[rng.IntN(len(actors))]
		opts := []rulestest.EvOpt{scOn(fmt.Sprintf("s-%s-%s-%d", actor, d.id, rng.IntN(3)), d.id, d.ip)}
		if a == event.ActionLogin {
			opts = append(opts, scMFA(rng.IntN(3) > 0))
		}
		ev := rulestest.Event(fmt.Sprintf("x%05d", i), actor, at, a, opts...)
		if !a.IsRecordAction() {
			ev.Subject = event.Subject{}
		}
		out = append(out, ev)
	}
	return out
}

// TestSharedCredentialRestart: a restart anywhere, with sessions, places,
// failures and open episodes in flight, gives the alerts of an
// uninterrupted run, whatever the batching.
func TestSharedCredentialRestart(t *testing.T) {
	p := scTestPolicy()
	requireMFA(&p)
	opts := rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: p}, Roster: scRoster(), Disabled: []string{outofhours.Name, nobusinessneed.Name}}
	events := scStream(3, 2500)
	single := map[string]alert.Alert{}
	e := rulestest.NewEngine(t, opts)
	rulestest.Run(t, e, events, 64, single, nil)
	rulestest.Flush(e, single, nil)
	patterns := map[string]int{}
	for _, a := range single {
		if a.Check == Name {
			patterns[a.Pattern]++
		}
	}
	for _, pt := range Patterns() {
		if patterns[pt] == 0 {
			t.Fatalf("stream too tame: no %s alert (%v)", pt, patterns)
		}
	}
	want := rulestest.JSONOf(t, rulestest.SortedAlerts(single))
	resumed := 0
	for _, cut := range []int{1, 200, 1250, 2499} {
		alerts, state := map[string]alert.Alert{}, map[string][]byte{}
		first := rulestest.NewEngine(t, opts)
		rulestest.Run(t, first, events[:cut], 7, alerts, state)
		keys, open := 0, map[string]bool{}
		for k := range state {
			keys += rulestest.B2I(strings.HasPrefix(k, "rules/"+Name+"/actors/"))
			if id, ok := strings.CutPrefix(k, "rules/"+Name+"/ep/"); ok {
				open[id] = true
			}
		}
		if cut > 1 && keys == 0 {
			t.Fatalf("cut %d: no actor state in flight", cut)
		}
		second := rulestest.NewEngine(t, opts)
		if err := second.Restore(rulestest.Entries(state)); err != nil {
			t.Fatal(err)
		}
		later := map[string]alert.Alert{}
		rulestest.Run(t, second, events[cut:], 13, later, state)
		rulestest.Flush(second, later, state)
		for id, a := range later {
			resumed += rulestest.B2I(open[id])
			alerts[id] = a
		}
		if got := rulestest.JSONOf(t, rulestest.SortedAlerts(alerts)); got != want {
			t.Errorf("cut %d: restored run differs from a single run", cut)
			rulestest.DiffAlerts(t, single, alerts)
		}
	}
	if resumed == 0 {
		t.Error("no cut fell inside an episode that then grew")
	}
	for _, batch := range []int{1, 500, 2500} {
		alerts, state := map[string]alert.Alert{}, map[string][]byte{}
		e := rulestest.NewEngine(t, opts)
		rulestest.Run(t, e, events, batch, alerts, state)
		rulestest.Flush(e, alerts, state)
		if got := rulestest.JSONOf(t, rulestest.SortedAlerts(alerts)); got != want {
			t.Errorf("batch %d: alerts differ", batch)
		}
		// Bounded: at most one state entry per actor besides episodes.
		n := 0
		for k := range state {
			n += rulestest.B2I(strings.HasPrefix(k, "rules/"+Name+"/actors/"))
		}
		if n > 9 { // the stream's nine actors
			t.Errorf("batch %d: %d actor entries", batch, n)
		}
	}
}

// TestSharedCredentialDST: travel and session times are real durations, so
// a clock change between two events neither hides nor invents anything.
func TestSharedCredentialDST(t *testing.T) {
	// 00:50 GMT then 02:05 BST on 29 March 2026: 15 minutes apart.
	events := []event.Event{
		rulestest.Event("e1", "u-40", rulestest.LT("2026-03-29 00:50:00"), event.ActionView, scOn("s1", "", "10.2.0.11")),
		rulestest.Event("e2", "u-40", rulestest.LT("2026-03-29 02:05:00"), event.ActionView, scOn("s1", "", "203.0.113.7")),
		// 01:40 BST then 01:20 GMT on 25 October 2026: 40 minutes later,
		// beyond the session timeout.
		rulestest.Event("e3", "u-21", rulestest.At("2026-10-25T00:40:00Z"), event.ActionView, scOn("s3", "tab-01", "10.2.0.21")),
		rulestest.Event("e4", "u-21", rulestest.At("2026-10-25T01:20:00Z"), event.ActionLogin, scOn("s4", "tab-02", "10.2.0.22")),
	}
	e := rulestest.NewEngine(t, rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: scTestPolicy()}, Roster: scRoster()})
	alerts := map[string]alert.Alert{}
	rulestest.Run(t, e, events, 10, alerts, nil)
	rulestest.Flush(e, alerts, nil)
	var got []string
	for _, a := range rulestest.SortedAlerts(alerts) {
		if a.Check == Name {
			got = append(got, a.Pattern+" "+strings.Join(a.EventIDs, " ")+": "+a.Explanation)
		}
	}
	want := []string{"impossible-travel e1 e2: u-40 (manager, office) viewed a care-plan record from a network outside every known site at 02:05 on Sun 29 Mar 2026, 15m after acting from webster-court (at 00:50): at least 30m apart, and 1 more action until 02:05."}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestSharedCredentialPolicyValidation(t *testing.T) {
	bad := []Policy{
		{Knobs: Knobs{SessionTimeout: -time.Minute}},
		{Knobs: Knobs{SessionTimeout: 25 * time.Hour}},
		{Knobs: Knobs{FailedLogins: 1}},
		{Knobs: Knobs{MaxSpeedKMH: -3}},
		{Knobs: Knobs{UnknownNetworks: "maybe"}},
		{Knobs: Knobs{DisabledPatterns: []string{"typo"}}},
		{Knobs: Knobs{Severity: "urgent"}},
		{Roles: map[string]Knobs{"": {}}},
		{DeviceKinds: map[string]time.Duration{"mobile": 0}},
		{Sites: []Site{{Name: "a"}}},
		{Sites: []Site{{Name: "a", Networks: scSites[0].Networks}, {Name: "a", Networks: scSites[1].Networks}}},
		{Sites: []Site{{Name: "a", Networks: scSites[0].Networks, Located: true, Lat: 91}}},
	}
	for i, p := range bad {
		if _, err := rules.New(rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: {Checks: map[string]any{Name: p}}}}); err == nil {
			t.Errorf("%d: accepted %+v", i, p)
		}
	}
	if _, err := rules.New(rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: scTestPolicy()}}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSharedCredential: every event carries a session, a quarter of
// actors roam between sites and the internet.
func BenchmarkSharedCredential(b *testing.B) {
	events := scStream(7, 100_000)
	slices.SortStableFunc(events, func(x, y event.Event) int { return x.Time.Compare(y.Time) })
	p := scTestPolicy()
	requireMFA(&p)
	// This check alone.
	others := slices.DeleteFunc(rules.Checks(), func(c string) bool { return c == Name })
	b.ReportAllocs()
	cpu0 := rulestest.CPUTime()
	for b.Loop() {
		e := rulestest.NewEngine(b, rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: p}, Roster: scRoster(), Disabled: others})
		for i := 0; i < len(events); i += 1000 {
			if _, err := e.Process(events[i:min(i+1000, len(events))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(events))*float64(b.N)/(rulestest.CPUTime()-cpu0).Seconds(), "events/cpu-s")
}

// scOf is the policy p holds for this check, added with its defaults when
// it holds none, for a test to change in place.
func scOf(p *rules.OrgPolicy) *Policy { return rulestest.CheckPolicy[Policy](p, Name) }
