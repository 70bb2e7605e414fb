package unlockedsession

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/rulestest"
)

// ulsOn puts an event in a session on a device; either may be empty.
func ulsOn(session, device string) rulestest.EvOpt {
	return func(e *event.Event) { e.Session = event.Session{ID: session, Device: device} }
}

// ulsMon is a time on Monday 9 March 2026, London.
func ulsMon(clock string) time.Time { return rulestest.LT("2026-03-09 " + clock) }

// ulsAlerts runs events through an engine (default lateness, batches of
// batch) and renders its unlocked-session alerts as "actor pattern [event
// ids] severity", in FirstSeen order.
func ulsAlerts(t *testing.T, p rules.OrgPolicy, events []event.Event, batch int) ([]string, []alert.Alert) {
	t.Helper()
	e := rulestest.NewTestEngine(t, p, rulestest.ULSRoster())
	alerts := map[string]alert.Alert{}
	rulestest.Run(t, e, events, batch, alerts, nil)
	rulestest.Flush(e, alerts, nil)
	var out []string
	var as []alert.Alert
	for _, a := range rulestest.SortedAlerts(alerts) {
		if a.Check != Name {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %v %s", a.ActorID, a.Pattern, a.EventIDs, a.Severity))
		as = append(as, a)
	}
	return out, as
}

func withULS(f func(*Policy)) func(*rules.OrgPolicy) {
	return func(p *rules.OrgPolicy) { f(ulsOf(p)) }
}

type ulsCase struct {
	name   string
	policy func(*rules.OrgPolicy)
	events []event.Event
	want   []string // "actor pattern [ids] severity"
}

func TestUnlockedGap(t *testing.T) {
	view, lock, unlock := event.ActionView, event.ActionLock, event.ActionUnlock
	login, logout, timeout := event.ActionLogin, event.ActionLogout, event.ActionTimeout
	tab := ulsOn("s1", "tab-01")
	pc := ulsOn("s1", "pc-01")
	// A view, then a second event of the same session after a gap.
	pair := func(gap time.Duration, second event.Action, o rulestest.EvOpt, opts ...rulestest.EvOpt) []event.Event {
		return []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, o),
			rulestest.Event("e2", "u-17", ulsMon("10:00:00").Add(gap), second, append([]rulestest.EvOpt{o}, opts...)...),
		}
	}
	cases := []ulsCase{
		// CONTRACT §4: 10 minutes on shared tablets, 30 elsewhere; more
		// than the limit fires.
		{name: "tablet exactly 10m", events: pair(10*time.Minute, view, tab)},
		{name: "tablet 10m1s", events: pair(10*time.Minute+time.Second, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "desktop 29m", events: pair(29*time.Minute, view, pc)},
		{name: "desktop exactly 30m", events: pair(30*time.Minute, view, pc)},
		{name: "desktop 30m1s", events: pair(30*time.Minute+time.Second, view, pc), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "laptop 20m", events: pair(20*time.Minute, view, ulsOn("s1", "lap-17"))},
		{name: "mobile 31m", events: pair(31*time.Minute, view, ulsOn("s1", "mob-40")), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "device not in devices.csv: 30m rule", events: pair(20*time.Minute, view, ulsOn("s1", "x-99"))},
		{name: "device not in devices.csv: 31m", events: pair(31*time.Minute, view, ulsOn("s1", "x-99")), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "session id without device: 30m rule", events: pair(31*time.Minute, view, ulsOn("s1", "")), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "device without session id", events: pair(11*time.Minute, view, ulsOn("", "tab-01")), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "no session information: not judged", events: pair(5*time.Hour, view, ulsOn("", ""))},

		// What ends a gap, and what does not count.
		{name: "gap ending at a lock counts", events: pair(15*time.Minute, lock, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "gap ending at a logout counts", events: pair(15*time.Minute, logout, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "gap ending at a timeout counts", events: pair(15*time.Minute, timeout, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "timeout within the limit", events: pair(10*time.Minute, timeout, tab)},
		{name: "gap ending at an unlock proves a lock", events: pair(40*time.Minute, unlock, tab)},
		{name: "gap ending at a login is a new session", events: pair(40*time.Minute, login, tab)},
		{name: "lock to unlock does not count", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, tab),
			rulestest.Event("e2", "u-17", ulsMon("10:02:00"), lock, tab),
			rulestest.Event("e3", "u-17", ulsMon("11:00:00"), unlock, tab),
			rulestest.Event("e4", "u-17", ulsMon("11:05:00"), view, tab),
		}},
		{name: "lock then an action with the unlock unlogged", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), lock, tab),
			rulestest.Event("e2", "u-17", ulsMon("10:50:00"), view, tab),
		}},
		{name: "after an unlock the clock runs again", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), lock, tab),
			rulestest.Event("e2", "u-17", ulsMon("10:50:00"), unlock, tab),
			rulestest.Event("e3", "u-17", ulsMon("11:02:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e2 e3] medium"}},
		{name: "logout ends the session", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), logout, tab),
			rulestest.Event("e2", "u-17", ulsMon("10:50:00"), view, tab),
		}},
		{name: "gap from the login counts", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), login, tab),
			rulestest.Event("e2", "u-17", ulsMon("10:12:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "failed login is not the session's", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, tab),
			rulestest.Event("e2", "u-17", ulsMon("10:08:00"), event.ActionLoginFailed, tab),
			rulestest.Event("e3", "u-17", ulsMon("10:09:00"), unlock, tab, rulestest.Failed()),
			rulestest.Event("e4", "u-17", ulsMon("10:12:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e1 e4] medium"}},
		{name: "a failed record action shows someone at the device", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, tab),
			rulestest.Event("e2", "u-17", ulsMon("10:08:00"), view, tab, rulestest.Failed()),
			rulestest.Event("e3", "u-17", ulsMon("10:16:00"), view, tab),
		}},
		{name: "sessions are apart", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, ulsOn("s1", "tab-01")),
			rulestest.Event("e2", "u-17", ulsMon("10:08:00"), view, ulsOn("s2", "tab-02")),
			rulestest.Event("e3", "u-17", ulsMon("10:16:00"), view, ulsOn("s2", "tab-02")),
		}},
		{name: "actors are apart in one session id", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, ulsOn("s1", "pc-01")),
			rulestest.Event("e2", "u-21", ulsMon("10:08:00"), view, ulsOn("s1", "pc-01")),
			rulestest.Event("e3", "u-17", ulsMon("10:25:00"), view, ulsOn("s1", "pc-01")),
		}, want: []string{"u-17 device-handover [e1 e2] medium", "u-21 device-handover [e2 e3] medium"}},
		{name: "a gap beyond new_session_after is a session the system ended", events: pair(13*time.Hour, view, tab)},
		{name: "an unlocked night is within new_session_after", events: pair(11*time.Hour, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},

		// Episodes: the same actor's gaps within the episode gap grow one
		// alert; the episode gap is at least the gap itself.
		{name: "two gaps are one episode", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, tab),
			rulestest.Event("e2", "u-17", ulsMon("10:15:00"), view, tab),
			rulestest.Event("e3", "u-17", ulsMon("10:20:00"), view, tab),
			rulestest.Event("e4", "u-17", ulsMon("10:45:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e1 e2 e3 e4] medium"}},
		{name: "a gap longer than the episode gap is one alert", events: pair(3*time.Hour, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "gaps far apart are two alerts", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, tab),
			rulestest.Event("e2", "u-17", ulsMon("10:15:00"), view, tab),
			rulestest.Event("e3", "u-17", ulsMon("10:16:00"), lock, tab),
			rulestest.Event("e4", "u-17", ulsMon("12:00:00"), unlock, tab),
			rulestest.Event("e5", "u-17", ulsMon("12:15:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e1 e2] medium", "u-17 unlocked-gap [e4 e5] medium"}},
		{name: "a long gap after an episode closed opens its own", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, tab),
			rulestest.Event("e2", "u-17", ulsMon("10:15:00"), view, tab),
			rulestest.Event("e3", "u-17", ulsMon("12:00:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e1 e2] medium", "u-17 unlocked-gap [e2 e3] medium"}},

		// Severity.
		{name: "sensitive subject raises severity", events: pair(15*time.Minute, view, tab, rulestest.Subject("c-1", "safeguarding")),
			want: []string{"u-17 unlocked-gap [e1 e2] high"}},
		{name: "configured severity", events: pair(15*time.Minute, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] low"},
			policy: withULS(func(p *Policy) { p.Severity = alert.SeverityLow })},
		{name: "DPIA score beats configured severity", events: pair(15*time.Minute, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] high"},
			policy: func(p *rules.OrgPolicy) {
				ulsOf(p).Severity = alert.SeverityLow
				p.Risks[Name] = []rules.RiskRef{{ID: "R1", Score: "high"}}
			}},

		// Knobs: org limit is "elsewhere"; device kind, role, team beat it.
		{name: "org limit applies elsewhere", events: pair(25*time.Minute, view, pc), want: []string{"u-17 unlocked-gap [e1 e2] medium"},
			policy: withULS(func(p *Policy) { p.Limit = 20 * time.Minute })},
		{name: "org limit leaves the tablet's own", events: pair(11*time.Minute, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"},
			policy: withULS(func(p *Policy) { p.Limit = 20 * time.Minute })},
		{name: "device kind limit", events: pair(14*time.Minute, view, tab),
			policy: withULS(func(p *Policy) {
				p.DeviceKinds = map[string]Knobs{reference.DeviceSharedTablet: {Limit: 15 * time.Minute}}
			})},
		{name: "device kind other knobs keep the tablet limit", events: pair(11*time.Minute, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] high"},
			policy: withULS(func(p *Policy) {
				p.DeviceKinds = map[string]Knobs{reference.DeviceSharedTablet: {Severity: alert.SeverityHigh}}
			})},
		{name: "desktop kind limit", events: pair(6*time.Minute, view, pc), want: []string{"u-17 unlocked-gap [e1 e2] medium"},
			policy: withULS(func(p *Policy) {
				p.DeviceKinds = map[string]Knobs{reference.DeviceDesktop: {Limit: 5 * time.Minute}}
			})},
		{name: "role beats device kind", events: pair(14*time.Minute, view, tab),
			policy: withULS(func(p *Policy) {
				p.Roles = map[string]Knobs{"support-worker": {Limit: 15 * time.Minute}}
			})},
		{name: "team beats role", events: pair(14*time.Minute, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"},
			policy: withULS(func(p *Policy) {
				p.Roles = map[string]Knobs{"support-worker": {Limit: 15 * time.Minute}}
				p.Teams = map[string]Knobs{"webster-court": {Limit: 12 * time.Minute}}
			})},
		{name: "role of another actor", events: pair(11*time.Minute, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"},
			policy: withULS(func(p *Policy) {
				p.Roles = map[string]Knobs{"manager": {Limit: 15 * time.Minute}}
			})},
		{name: "exempt role", events: pair(40*time.Minute, view, tab),
			policy: withULS(func(p *Policy) {
				p.Roles = map[string]Knobs{"support-worker": {Exempt: new(true)}}
			})},
		{name: "pattern switched off", events: pair(40*time.Minute, view, tab),
			policy: withULS(func(p *Policy) { p.UnlockedGap = new(false) })},
		{name: "pattern switched off for a kind only", events: pair(40*time.Minute, view, pc), want: []string{"u-17 unlocked-gap [e1 e2] medium"},
			policy: withULS(func(p *Policy) {
				p.DeviceKinds = map[string]Knobs{reference.DeviceSharedTablet: {UnlockedGap: new(false)}}
			})},
		{name: "new_session_after", events: pair(3*time.Hour, view, tab),
			policy: withULS(func(p *Policy) { p.NewSessionAfter = 2 * time.Hour })},
		{name: "episode gap", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, tab),
			rulestest.Event("e2", "u-17", ulsMon("10:15:00"), view, tab),
			rulestest.Event("e3", "u-17", ulsMon("11:30:00"), view, tab),
			rulestest.Event("e4", "u-17", ulsMon("11:45:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e1 e2 e3 e4] medium"},
			policy: withULS(func(p *Policy) { p.EpisodeGap = 2 * time.Hour })},

		// DST: gaps are real durations, not wall-clock differences.
		{name: "spring forward: 8 real minutes over 01:00 GMT", events: []event.Event{
			rulestest.Event("e1", "u-21", rulestest.LT("2026-03-29 00:55:00"), view, tab),
			rulestest.Event("e2", "u-21", rulestest.LT("2026-03-29 02:03:00"), view, tab), // 01:03 GMT
		}},
		{name: "spring forward: 11 real minutes", events: []event.Event{
			rulestest.Event("e1", "u-21", rulestest.LT("2026-03-29 00:55:00"), view, tab),
			rulestest.Event("e2", "u-21", rulestest.LT("2026-03-29 02:06:00"), view, tab),
		}, want: []string{"u-21 unlocked-gap [e1 e2] medium"}},
		{name: "fall back: the repeated hour", events: []event.Event{
			rulestest.Event("e1", "u-21", rulestest.At("2026-10-25T00:55:00Z"), view, tab), // 01:55 BST
			rulestest.Event("e2", "u-21", rulestest.At("2026-10-25T01:06:00Z"), view, tab), // 01:06 GMT
		}, want: []string{"u-21 unlocked-gap [e1 e2] medium"}},
	}
	runULSCases(t, cases, "unlocked-gap")
}

func TestDeviceHandover(t *testing.T) {
	view, lock, login := event.ActionView, event.ActionLock, event.ActionLogin
	logout, timeout := event.ActionLogout, event.ActionTimeout
	a := func(id, clock string, act event.Action, opts ...rulestest.EvOpt) event.Event {
		return rulestest.Event(id, "u-17", ulsMon(clock), act, append([]rulestest.EvOpt{ulsOn("sa", "tab-01")}, opts...)...)
	}
	b := func(id, clock string, act event.Action, opts ...rulestest.EvOpt) event.Event {
		return rulestest.Event(id, "u-21", ulsMon(clock), act, append([]rulestest.EvOpt{ulsOn("sb", "tab-01")}, opts...)...)
	}
	cases := []ulsCase{
		{name: "another account logs in on an open session", events: []event.Event{
			a("e1", "10:00:00", login), a("e2", "10:01:00", view), b("e3", "10:03:00", login), b("e4", "10:04:00", view), b("e5", "10:05:00", logout),
			a("e6", "10:09:00", timeout),
		}, want: []string{"u-17 device-handover [e2 e3] medium"}},
		{name: "another account acts without logging in", events: []event.Event{
			a("e1", "10:00:00", view), b("e2", "10:03:00", view, rulestest.Subject("c-7", "safeguarding")),
		}, want: []string{"u-17 device-handover [e1 e2] high"}},
		// Events of one instant come in no given order (here by id).
		{name: "a logout stamped the same second as the next login", events: []event.Event{
			a("e1", "10:00:00", view), b("e2", "10:05:00", login), a("e3", "10:05:00", logout), b("e4", "10:06:00", view),
		}},
		{name: "a timeout stamped the same second", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:05:00", login), a("e3", "10:05:00", timeout)}},
		{name: "the holder's logout a second later", events: []event.Event{
			a("e1", "10:00:00", view), b("e2", "10:05:00", login), a("e3", "10:05:01", logout), b("e4", "10:06:00", view),
		}, want: []string{"u-17 device-handover [e1 e2] medium"}},
		{name: "another account in the same second as the holder's action", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:00:00", login)},
			want: []string{"u-17 device-handover [e1 e2] medium"}},
		{name: "after a logout", events: []event.Event{a("e1", "10:00:00", view), a("e2", "10:01:00", logout), b("e3", "10:02:00", login)}},
		{name: "after a timeout", events: []event.Event{a("e1", "10:00:00", view), a("e2", "10:05:00", timeout), b("e3", "10:06:00", login)}},
		{name: "after a lock", events: []event.Event{a("e1", "10:00:00", view), a("e2", "10:01:00", lock), b("e3", "10:02:00", login)}},
		{name: "after a lock and unlock", events: []event.Event{
			a("e1", "10:00:00", view), a("e2", "10:01:00", lock), a("e3", "10:03:00", event.ActionUnlock), b("e4", "10:05:00", login),
		}, want: []string{"u-17 device-handover [e3 e4] medium"}},
		{name: "exactly open_for after the last action", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:30:00", login)},
			want: []string{"u-17 device-handover [e1 e2] medium"}},
		{name: "beyond open_for the session is taken as closed", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:30:01", login)}},
		{name: "the same account in a new session", events: []event.Event{
			a("e1", "10:00:00", view), rulestest.Event("e2", "u-17", ulsMon("10:02:00"), login, ulsOn("sa2", "tab-01")),
		}},
		{name: "a failed login of another account", events: []event.Event{
			a("e1", "10:00:00", view), b("e2", "10:02:00", event.ActionLoginFailed), b("e3", "10:02:30", login, rulestest.Failed()),
		}},
		{name: "another account's logout or lock is no handover and ends nothing", events: []event.Event{
			a("e1", "10:00:00", view), b("e2", "10:02:00", logout), b("e3", "10:03:00", lock), b("e4", "10:04:00", view),
		}, want: []string{"u-17 device-handover [e1 e4] medium"}},
		{name: "back and forth", events: []event.Event{
			a("e1", "10:00:00", view), b("e2", "10:02:00", view), a("e3", "10:04:00", view),
		}, want: []string{"u-17 device-handover [e1 e2] medium", "u-21 device-handover [e2 e3] medium"}},
		{name: "one account leaving sessions open twice is one episode", events: []event.Event{
			a("e1", "10:00:00", view), b("e2", "10:02:00", view), b("e3", "10:03:00", logout),
			a("e4", "10:20:00", login), a("e5", "10:21:00", view), rulestest.Event("e6", "u-40", ulsMon("10:25:00"), login, ulsOn("sc", "tab-01")),
		}, want: []string{"u-17 device-handover [e1 e2 e5 e6] medium"}},
		{name: "other devices are apart", events: []event.Event{
			a("e1", "10:00:00", view), rulestest.Event("e2", "u-21", ulsMon("10:02:00"), login, ulsOn("sb", "tab-02")),
		}},
		{name: "without a device nothing is judged", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, ulsOn("sa", "")), rulestest.Event("e2", "u-21", ulsMon("10:02:00"), view, ulsOn("sa", "")),
		}},
		{name: "a device not in devices.csv", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, ulsOn("sa", "x-1")), rulestest.Event("e2", "u-21", ulsMon("10:02:00"), login, ulsOn("sb", "x-1")),
		}, want: []string{"u-17 device-handover [e1 e2] medium"}},
		{name: "a personal laptop", events: []event.Event{
			rulestest.Event("e1", "u-17", ulsMon("10:00:00"), view, ulsOn("sa", "lap-17")), rulestest.Event("e2", "u-21", ulsMon("10:02:00"), login, ulsOn("sb", "lap-17")),
		}, want: []string{"u-17 device-handover [e1 e2] medium"}},

		// Knobs: the policy of the account that left its session open.
		{name: "open_for", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:12:00", login)},
			policy: withULS(func(p *Policy) { p.OpenFor = 10 * time.Minute })},
		{name: "open_for per device kind", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:12:00", login)},
			policy: withULS(func(p *Policy) {
				p.DeviceKinds = map[string]Knobs{reference.DeviceSharedTablet: {OpenFor: 10 * time.Minute}}
			})},
		{name: "switched off for the kind", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:02:00", login)},
			policy: withULS(func(p *Policy) {
				p.DeviceKinds = map[string]Knobs{reference.DeviceSharedTablet: {DeviceHandover: new(false)}}
			})},
		{name: "holder's team exempt", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:02:00", login)},
			policy: withULS(func(p *Policy) {
				p.Teams = map[string]Knobs{"webster-court": {Exempt: new(true)}}
			})},
		{name: "newcomer's role exempt does not matter", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:02:00", login)},
			want: []string{"u-17 device-handover [e1 e2] medium"},
			policy: withULS(func(p *Policy) {
				p.Roles = map[string]Knobs{"night-carer": {Exempt: new(true)}}
			})},
		{name: "holder's severity", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:02:00", login)},
			want: []string{"u-17 device-handover [e1 e2] high"},
			policy: withULS(func(p *Policy) {
				p.Roles = map[string]Knobs{"support-worker": {Severity: alert.SeverityHigh}}
			})},
	}
	runULSCases(t, cases, "device-handover")
}

func runULSCases(t *testing.T, cases []ulsCase, golden string) {
	t.Helper()
	var g strings.Builder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := rulestest.Policy()
			p.Risks = map[string][]rules.RiskRef{}
			if tc.policy != nil {
				tc.policy(&p)
			}
			var first []alert.Alert
			for _, batch := range []int{1, len(tc.events)} {
				got, as := ulsAlerts(t, p, tc.events, batch)
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("batch %d:\n got %q\nwant %q", batch, got, tc.want)
				}
				if first == nil {
					first = as
				} else if rulestest.JSONOf(t, as) != rulestest.JSONOf(t, first) {
					t.Fatalf("batch %d changed the alerts", batch)
				}
			}
			for _, a := range first {
				for _, ev := range tc.events {
					if ev.Subject.ID != "" && strings.Contains(a.Explanation, ev.Subject.ID) {
						t.Errorf("explanation names a subject: %s", a.Explanation)
					}
				}
				fmt.Fprintf(&g, "%s\n\t%s %s %s\n\t%s\n", tc.name, a.Pattern, a.Severity, a.SubjectID, a.Explanation)
			}
		})
	}
	rulestest.CheckGolden(t, "unlocked-session-"+golden+".golden", g.String())
}

// TestUnlockedSessionLateEvents: events out of order within the lateness
// bound are judged as if in order; an event late beyond it, older than the
// session's or device's state, changes nothing.
func TestUnlockedSessionLateEvents(t *testing.T) {
	tab := ulsOn("s1", "tab-01")
	inOrder := []event.Event{
		rulestest.Event("e1", "u-17", ulsMon("10:00:00"), event.ActionView, tab),
		rulestest.Event("e2", "u-17", ulsMon("10:04:00"), event.ActionLock, tab),
		rulestest.Event("e3", "u-17", ulsMon("10:30:00"), event.ActionUnlock, tab),
		rulestest.Event("e4", "u-17", ulsMon("10:31:00"), event.ActionView, tab),
		rulestest.Event("e5", "u-21", ulsMon("10:33:00"), event.ActionLogin, ulsOn("s2", "tab-01")),
	}
	p := rulestest.Policy()
	want, _ := ulsAlerts(t, p, inOrder, 1)
	if !reflect.DeepEqual(want, []string{"u-17 device-handover [e4 e5] medium"}) {
		t.Fatalf("in order: %q", want)
	}
	// The lock arrives last, 29 minutes late: within a 1h bound the same.
	shuffled := []event.Event{inOrder[0], inOrder[2], inOrder[3], inOrder[4], inOrder[1]}
	o := rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: p}, Roster: rulestest.ULSRoster(), Lateness: time.Hour}
	e := rulestest.NewEngine(t, o)
	alerts := map[string]alert.Alert{}
	rulestest.Run(t, e, shuffled, 1, alerts, nil)
	rulestest.Flush(e, alerts, nil)
	var got []string
	for _, a := range rulestest.SortedAlerts(alerts) {
		if a.Check == Name {
			got = append(got, fmt.Sprintf("%s %s %v %s", a.ActorID, a.Pattern, a.EventIDs, a.Severity))
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("within the bound: %q, want %q", got, want)
	}
	// Judged on arrival, the late lock cannot unsay the gap e1→e3 (which
	// ends at an unlock, so is not one) nor add one: it is ignored.
	o.Lateness = rules.NoLateness
	e = rulestest.NewEngine(t, o)
	alerts = map[string]alert.Alert{}
	rulestest.Run(t, e, shuffled, 1, alerts, nil)
	rulestest.Flush(e, alerts, nil)
	got = got[:0]
	for _, a := range rulestest.SortedAlerts(alerts) {
		if a.Check == Name {
			got = append(got, fmt.Sprintf("%s %s %v %s", a.ActorID, a.Pattern, a.EventIDs, a.Severity))
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("beyond the bound: %q, want %q", got, want)
	}
}

// TestUnlockedSessionRestart: a restart between the two events of a gap, and
// between an open session and another account's action, continues as an
// uninterrupted run would; the state is the check's own tables.
func TestUnlockedSessionRestart(t *testing.T) {
	tab := ulsOn("s1", "tab-01")
	events := []event.Event{
		rulestest.Event("e1", "u-17", ulsMon("10:00:00"), event.ActionView, tab),
		rulestest.Event("e2", "u-17", ulsMon("10:15:00"), event.ActionView, tab),
		rulestest.Event("e3", "u-17", ulsMon("10:20:00"), event.ActionView, tab),
		rulestest.Event("e4", "u-21", ulsMon("10:22:00"), event.ActionLogin, ulsOn("s2", "tab-01")),
		rulestest.Event("e5", "u-17", ulsMon("10:40:00"), event.ActionView, tab),
		rulestest.Event("e6", "u-21", ulsMon("10:41:00"), event.ActionLogout, ulsOn("s2", "tab-01")),
	}
	o := rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: rulestest.Policy()}, Roster: rulestest.ULSRoster(), Lateness: rules.NoLateness}
	single := map[string]alert.Alert{}
	e := rulestest.NewEngine(t, o)
	rulestest.Run(t, e, events, 1, single, nil)
	rulestest.Flush(e, single, nil)
	want := rulestest.JSONOf(t, rulestest.SortedAlerts(single))
	for cut := 1; cut < len(events); cut++ {
		alerts, state := map[string]alert.Alert{}, map[string][]byte{}
		rulestest.Run(t, rulestest.NewEngine(t, o), events[:cut], 1, alerts, state)
		var sessions, devices, held int
		for k := range state {
			sessions += rulestest.B2I(strings.HasPrefix(k, "rules/"+Name+"/sessions/"))
			devices += rulestest.B2I(strings.HasPrefix(k, "rules/"+Name+"/devices/"))
			held += rulestest.B2I(strings.HasPrefix(k, "rules/"+Name+"/handovers/"))
		}
		if sessions == 0 || devices == 0 || (cut == 4 || cut == 5) != (held == 1) {
			t.Fatalf("cut %d: %d sessions, %d devices and %d held handovers saved", cut, sessions, devices, held)
		}
		second := rulestest.NewEngine(t, o)
		if err := second.Restore(rulestest.Entries(state)); err != nil {
			t.Fatal(err)
		}
		rulestest.Run(t, second, events[cut:], 1, alerts, state)
		rulestest.Flush(second, alerts, state)
		if got := rulestest.JSONOf(t, rulestest.SortedAlerts(alerts)); got != want {
			t.Errorf("cut %d: restored run differs", cut)
			rulestest.DiffAlerts(t, single, alerts)
		}
	}
	var got []string
	for _, a := range rulestest.SortedAlerts(single) {
		if a.Check == Name {
			got = append(got, fmt.Sprintf("%s %s %v", a.ActorID, a.Pattern, a.EventIDs))
		}
	}
	// u-21 logged in and left its session open when u-17 came back, and
	// did not log out for 19 minutes.
	wantAlerts := []string{"u-17 unlocked-gap [e1 e2 e3 e5]", "u-17 device-handover [e3 e4]", "u-21 device-handover [e4 e5]", "u-21 unlocked-gap [e4 e6]"}
	if !reflect.DeepEqual(got, wantAlerts) {
		t.Errorf("alerts %q, want %q", got, wantAlerts)
	}
}

// TestUnlockedSessionStateBounded: a logged-out session and a released
// device leave no state; one never closed is forgotten after the horizon.
func TestUnlockedSessionStateBounded(t *testing.T) {
	tab := ulsOn("s1", "tab-01")
	o := rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: rulestest.Policy()}, Roster: rulestest.ULSRoster(), Lateness: rules.NoLateness}
	e := rulestest.NewEngine(t, o)
	state := map[string][]byte{}
	rulestest.Run(t, e, []event.Event{
		rulestest.Event("e1", "u-17", ulsMon("10:00:00"), event.ActionLogin, tab),
		rulestest.Event("e2", "u-17", ulsMon("10:01:00"), event.ActionView, tab),
		rulestest.Event("e3", "u-17", ulsMon("10:02:00"), event.ActionLogout, tab),
		rulestest.Event("e4", "u-21", ulsMon("10:03:00"), event.ActionView, ulsOn("s2", "pc-01")),
	}, 10, nil, state)
	left := rulestest.Only(rulestest.Entries(state), "rules/"+Name+"/")
	if len(left) != 2 { // u-21's session and pc-01
		t.Fatalf("state left: %v", left)
	}
	// Two steps: a jump beyond MaxAhead would not move the clock.
	rulestest.Run(t, e, []event.Event{rulestest.Event("e5", "u-40", rulestest.LT("2026-03-10 06:00:00"), event.ActionView, ulsOn("s3", ""))}, 10, nil, state)
	if left = rulestest.Only(rulestest.Entries(state), "rules/"+Name+"/"); len(left) != 3 {
		t.Fatalf("state forgotten before the horizon: %v", left)
	}
	rulestest.Run(t, e, []event.Event{rulestest.Event("e6", "u-40", rulestest.LT("2026-03-10 12:00:00"), event.ActionView, ulsOn("s4", ""))}, 10, nil, state)
	left = rulestest.Only(rulestest.Entries(state), "rules/"+Name+"/")
	if len(left) != 2 || !strings.HasSuffix(left[0].Key, "s3") || !strings.HasSuffix(left[1].Key, "s4") {
		t.Fatalf("state left after the horizon: %v", left)
	}
}

func TestUnlockedSessionPolicyValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		err  string
	}{
		{"negative limit", Policy{Knobs: Knobs{Limit: -time.Minute}}, "negative"},
		{"limit over a day", Policy{Knobs: Knobs{Limit: 25 * time.Hour}}, "exceed"},
		{"new session before the limit", Policy{DeviceKinds: map[string]Knobs{"desktop": {Limit: 13 * time.Hour}}}, "device kind desktop: new_session_after"},
		{"empty role", Policy{Roles: map[string]Knobs{"": {}}}, "empty role"},
		{"bad severity", Policy{Teams: map[string]Knobs{"t": {Severity: "urgent"}}}, "team t: unknown severity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rules.New(rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: {Checks: map[string]any{Name: tc.p}}}})
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
	if got := DeviceKeyedPatterns(); !reflect.DeepEqual(got, []string{PatternDeviceHandover}) {
		t.Errorf("DeviceKeyedPatterns() = %v", got)
	}
}

// BenchmarkUnlockedSession: the check alone (the others disabled) over
// 100,000 events in sessions of 2,000 actors on 600 devices: login, about
// 20 actions 20s–4m apart (one gap in 50 of 15m), logout or timeout, a
// session in 8 taken over by another account; batches of 1,000.
func BenchmarkUnlockedSession(b *testing.B) {
	const n, actors = 100_000, 2000
	var devs []reference.Device
	for i := range 600 {
		kind := reference.DeviceKinds[i%len(reference.DeviceKinds)]
		devs = append(devs, reference.Device{DeviceID: fmt.Sprintf("d-%d", i), Org: rulestest.Org, Kind: kind})
	}
	roster := rulestest.NewFakeRoster(nil, nil)
	roster.Index = reference.NewIndex(&reference.Data{Devices: devs})
	rng := rand.New(rand.NewPCG(4, 4))
	actions := []event.Action{event.ActionView, event.ActionView, event.ActionSearch, event.ActionUpdate}
	var events []event.Event
	for s := 0; len(events) < n; s++ {
		who, dev := fmt.Sprintf("u-%d", rng.IntN(actors)), fmt.Sprintf("d-%d", rng.IntN(len(devs)))
		t := rulestest.LT("2026-03-02 00:00:00").Add(time.Duration(rng.Int64N(int64(7 * 24 * time.Hour))))
		add := func(who string, a event.Action) {
			events = append(events, rulestest.Event(fmt.Sprintf("e%06d", len(events)), who, t, a, ulsOn(fmt.Sprintf("s-%d-%s", s, who), dev)))
		}
		add(who, event.ActionLogin)
		for range 15 + rng.IntN(10) {
			t = t.Add(time.Duration(20+rng.IntN(220)) * time.Second)
			if rng.IntN(50) == 0 {
				t = t.Add(15 * time.Minute)
			}
			add(who, actions[rng.IntN(len(actions))])
		}
		t = t.Add(time.Minute)
		if rng.IntN(8) == 0 {
			add(fmt.Sprintf("u-%d", rng.IntN(actors)), event.ActionLogin)
		} else if rng.IntN(4) == 0 {
			add(who, event.ActionTimeout)
		} else {
			add(who, event.ActionLogout)
		}
	}
	slices.SortStableFunc(events, func(a, b event.Event) int { return a.Time.Compare(b.Time) })
	events = events[:n]
	var off []string
	for _, c := range rules.Checks() {
		if c != Name {
			off = append(off, c)
		}
	}
	var alerts, evaluated int
	b.ReportAllocs()
	cpu0 := rulestest.CPUTime()
	for b.Loop() {
		e := rulestest.NewEngine(b, rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: rulestest.Policy()}, Roster: roster, Disabled: off})
		for i := 0; i < n; i += 1000 {
			fx, err := e.Process(events[i : i+1000])
			if err != nil {
				b.Fatal(err)
			}
			for _, a := range fx.Alerts {
				if a.EventCount <= 2 {
					alerts++
				}
			}
		}
		evaluated++
	}
	cpu := rulestest.CPUTime() - cpu0
	b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(alerts)/float64(evaluated), "alerts/op")
}

// ulsOf is the policy p holds for this check, added with its defaults when
// it holds none, for a test to change in place.
func ulsOf(p *rules.OrgPolicy) *Policy { return rulestest.CheckPolicy[Policy](p, Name) }
