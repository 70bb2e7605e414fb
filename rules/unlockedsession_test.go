package rules

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
)

// The devices the unlocked-session cases run on.
var ulsDevices = []reference.Device{
	{DeviceID: "tab-01", Org: testOrg, Kind: reference.DeviceSharedTablet, AssignedTo: "webster-court"},
	{DeviceID: "tab-02", Org: testOrg, Kind: reference.DeviceSharedTablet, AssignedTo: "webster-court"},
	{DeviceID: "pc-01", Org: testOrg, Kind: reference.DeviceDesktop},
	{DeviceID: "lap-17", Org: testOrg, Kind: reference.DeviceLaptop, AssignedTo: "u-17"},
	{DeviceID: "mob-40", Org: testOrg, Kind: reference.DeviceMobile, AssignedTo: "u-40"},
}

func ulsRoster() *fakeRoster {
	r := newFakeRoster(judgeStaff, judgeShifts)
	r.Index = reference.NewIndex(&reference.Data{Devices: ulsDevices, Relationships: nbnRelations, SharingAgreements: nbnAgreements})
	return r
}

// ulsOn puts an event in a session on a device; either may be empty.
func ulsOn(session, device string) evOpt {
	return func(e *event.Event) { e.Session = event.Session{ID: session, Device: device} }
}

// ulsMon is a time on Monday 9 March 2026, London.
func ulsMon(clock string) time.Time { return lt("2026-03-09 " + clock) }

// ulsAlerts runs events through an engine (default lateness, batches of
// batch) and renders its unlocked-session alerts as "actor pattern [event
// ids] severity", in FirstSeen order.
func ulsAlerts(t *testing.T, p OrgPolicy, events []event.Event, batch int) ([]string, []alert.Alert) {
	t.Helper()
	e := newTestEngine(t, p, ulsRoster())
	alerts := map[string]alert.Alert{}
	run(t, e, events, batch, alerts, nil)
	flush(e, alerts, nil)
	var out []string
	var as []alert.Alert
	for _, a := range sortedAlerts(alerts) {
		if a.Check != CheckUnlockedSession {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %v %s", a.ActorID, a.Pattern, a.EventIDs, a.Severity))
		as = append(as, a)
	}
	return out, as
}

func withULS(f func(*UnlockedSessionPolicy)) func(*OrgPolicy) {
	return func(p *OrgPolicy) { f(ulsOf(p)) }
}

type ulsCase struct {
	name   string
	policy func(*OrgPolicy)
	events []event.Event
	want   []string // "actor pattern [ids] severity"
}

func TestUnlockedGap(t *testing.T) {
	view, lock, unlock := event.ActionView, event.ActionLock, event.ActionUnlock
	login, logout, timeout := event.ActionLogin, event.ActionLogout, event.ActionTimeout
	tab := ulsOn("s1", "tab-01")
	pc := ulsOn("s1", "pc-01")
	// A view, then a second event of the same session after a gap.
	pair := func(gap time.Duration, second event.Action, o evOpt, opts ...evOpt) []event.Event {
		return []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, o),
			mkEvent("e2", "u-17", ulsMon("10:00:00").Add(gap), second, append([]evOpt{o}, opts...)...),
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
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, tab),
			mkEvent("e2", "u-17", ulsMon("10:02:00"), lock, tab),
			mkEvent("e3", "u-17", ulsMon("11:00:00"), unlock, tab),
			mkEvent("e4", "u-17", ulsMon("11:05:00"), view, tab),
		}},
		{name: "lock then an action with the unlock unlogged", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), lock, tab),
			mkEvent("e2", "u-17", ulsMon("10:50:00"), view, tab),
		}},
		{name: "after an unlock the clock runs again", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), lock, tab),
			mkEvent("e2", "u-17", ulsMon("10:50:00"), unlock, tab),
			mkEvent("e3", "u-17", ulsMon("11:02:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e2 e3] medium"}},
		{name: "logout ends the session", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), logout, tab),
			mkEvent("e2", "u-17", ulsMon("10:50:00"), view, tab),
		}},
		{name: "gap from the login counts", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), login, tab),
			mkEvent("e2", "u-17", ulsMon("10:12:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "failed login is not the session's", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, tab),
			mkEvent("e2", "u-17", ulsMon("10:08:00"), event.ActionLoginFailed, tab),
			mkEvent("e3", "u-17", ulsMon("10:09:00"), unlock, tab, failed()),
			mkEvent("e4", "u-17", ulsMon("10:12:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e1 e4] medium"}},
		{name: "a failed record action shows someone at the device", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, tab),
			mkEvent("e2", "u-17", ulsMon("10:08:00"), view, tab, failed()),
			mkEvent("e3", "u-17", ulsMon("10:16:00"), view, tab),
		}},
		{name: "sessions are apart", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, ulsOn("s1", "tab-01")),
			mkEvent("e2", "u-17", ulsMon("10:08:00"), view, ulsOn("s2", "tab-02")),
			mkEvent("e3", "u-17", ulsMon("10:16:00"), view, ulsOn("s2", "tab-02")),
		}},
		{name: "actors are apart in one session id", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, ulsOn("s1", "pc-01")),
			mkEvent("e2", "u-21", ulsMon("10:08:00"), view, ulsOn("s1", "pc-01")),
			mkEvent("e3", "u-17", ulsMon("10:25:00"), view, ulsOn("s1", "pc-01")),
		}, want: []string{"u-17 device-handover [e1 e2] medium", "u-21 device-handover [e2 e3] medium"}},
		{name: "a gap beyond new_session_after is a session the system ended", events: pair(13*time.Hour, view, tab)},
		{name: "an unlocked night is within new_session_after", events: pair(11*time.Hour, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},

		// Episodes: the same actor's gaps within the episode gap grow one
		// alert; the episode gap is at least the gap itself.
		{name: "two gaps are one episode", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, tab),
			mkEvent("e2", "u-17", ulsMon("10:15:00"), view, tab),
			mkEvent("e3", "u-17", ulsMon("10:20:00"), view, tab),
			mkEvent("e4", "u-17", ulsMon("10:45:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e1 e2 e3 e4] medium"}},
		{name: "a gap longer than the episode gap is one alert", events: pair(3*time.Hour, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"}},
		{name: "gaps far apart are two alerts", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, tab),
			mkEvent("e2", "u-17", ulsMon("10:15:00"), view, tab),
			mkEvent("e3", "u-17", ulsMon("10:16:00"), lock, tab),
			mkEvent("e4", "u-17", ulsMon("12:00:00"), unlock, tab),
			mkEvent("e5", "u-17", ulsMon("12:15:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e1 e2] medium", "u-17 unlocked-gap [e4 e5] medium"}},
		{name: "a long gap after an episode closed opens its own", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, tab),
			mkEvent("e2", "u-17", ulsMon("10:15:00"), view, tab),
			mkEvent("e3", "u-17", ulsMon("12:00:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e1 e2] medium", "u-17 unlocked-gap [e2 e3] medium"}},

		// Severity.
		{name: "sensitive subject raises severity", events: pair(15*time.Minute, view, tab, subject("c-1", "safeguarding")),
			want: []string{"u-17 unlocked-gap [e1 e2] high"}},
		{name: "configured severity", events: pair(15*time.Minute, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] low"},
			policy: withULS(func(p *UnlockedSessionPolicy) { p.Severity = alert.SeverityLow })},
		{name: "DPIA score beats configured severity", events: pair(15*time.Minute, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] high"},
			policy: func(p *OrgPolicy) {
				ulsOf(p).Severity = alert.SeverityLow
				p.Risks[CheckUnlockedSession] = []RiskRef{{ID: "R1", Score: "high"}}
			}},

		// Knobs: org limit is "elsewhere"; device kind, role, team beat it.
		{name: "org limit applies elsewhere", events: pair(25*time.Minute, view, pc), want: []string{"u-17 unlocked-gap [e1 e2] medium"},
			policy: withULS(func(p *UnlockedSessionPolicy) { p.Limit = 20 * time.Minute })},
		{name: "org limit leaves the tablet's own", events: pair(11*time.Minute, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"},
			policy: withULS(func(p *UnlockedSessionPolicy) { p.Limit = 20 * time.Minute })},
		{name: "device kind limit", events: pair(14*time.Minute, view, tab),
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.DeviceKinds = map[string]UnlockedSessionKnobs{reference.DeviceSharedTablet: {Limit: 15 * time.Minute}}
			})},
		{name: "device kind other knobs keep the tablet limit", events: pair(11*time.Minute, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] high"},
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.DeviceKinds = map[string]UnlockedSessionKnobs{reference.DeviceSharedTablet: {Severity: alert.SeverityHigh}}
			})},
		{name: "desktop kind limit", events: pair(6*time.Minute, view, pc), want: []string{"u-17 unlocked-gap [e1 e2] medium"},
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.DeviceKinds = map[string]UnlockedSessionKnobs{reference.DeviceDesktop: {Limit: 5 * time.Minute}}
			})},
		{name: "role beats device kind", events: pair(14*time.Minute, view, tab),
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.Roles = map[string]UnlockedSessionKnobs{"support-worker": {Limit: 15 * time.Minute}}
			})},
		{name: "team beats role", events: pair(14*time.Minute, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"},
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.Roles = map[string]UnlockedSessionKnobs{"support-worker": {Limit: 15 * time.Minute}}
				p.Teams = map[string]UnlockedSessionKnobs{"webster-court": {Limit: 12 * time.Minute}}
			})},
		{name: "role of another actor", events: pair(11*time.Minute, view, tab), want: []string{"u-17 unlocked-gap [e1 e2] medium"},
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.Roles = map[string]UnlockedSessionKnobs{"manager": {Limit: 15 * time.Minute}}
			})},
		{name: "exempt role", events: pair(40*time.Minute, view, tab),
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.Roles = map[string]UnlockedSessionKnobs{"support-worker": {Exempt: new(true)}}
			})},
		{name: "pattern switched off", events: pair(40*time.Minute, view, tab),
			policy: withULS(func(p *UnlockedSessionPolicy) { p.UnlockedGap = new(false) })},
		{name: "pattern switched off for a kind only", events: pair(40*time.Minute, view, pc), want: []string{"u-17 unlocked-gap [e1 e2] medium"},
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.DeviceKinds = map[string]UnlockedSessionKnobs{reference.DeviceSharedTablet: {UnlockedGap: new(false)}}
			})},
		{name: "new_session_after", events: pair(3*time.Hour, view, tab),
			policy: withULS(func(p *UnlockedSessionPolicy) { p.NewSessionAfter = 2 * time.Hour })},
		{name: "episode gap", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, tab),
			mkEvent("e2", "u-17", ulsMon("10:15:00"), view, tab),
			mkEvent("e3", "u-17", ulsMon("11:30:00"), view, tab),
			mkEvent("e4", "u-17", ulsMon("11:45:00"), view, tab),
		}, want: []string{"u-17 unlocked-gap [e1 e2 e3 e4] medium"},
			policy: withULS(func(p *UnlockedSessionPolicy) { p.EpisodeGap = 2 * time.Hour })},

		// DST: gaps are real durations, not wall-clock differences.
		{name: "spring forward: 8 real minutes over 01:00 GMT", events: []event.Event{
			mkEvent("e1", "u-21", lt("2026-03-29 00:55:00"), view, tab),
			mkEvent("e2", "u-21", lt("2026-03-29 02:03:00"), view, tab), // 01:03 GMT
		}},
		{name: "spring forward: 11 real minutes", events: []event.Event{
			mkEvent("e1", "u-21", lt("2026-03-29 00:55:00"), view, tab),
			mkEvent("e2", "u-21", lt("2026-03-29 02:06:00"), view, tab),
		}, want: []string{"u-21 unlocked-gap [e1 e2] medium"}},
		{name: "fall back: the repeated hour", events: []event.Event{
			mkEvent("e1", "u-21", at("2026-10-25T00:55:00Z"), view, tab), // 01:55 BST
			mkEvent("e2", "u-21", at("2026-10-25T01:06:00Z"), view, tab), // 01:06 GMT
		}, want: []string{"u-21 unlocked-gap [e1 e2] medium"}},
	}
	runULSCases(t, cases, "unlocked-gap")
}

func TestDeviceHandover(t *testing.T) {
	view, lock, login := event.ActionView, event.ActionLock, event.ActionLogin
	logout, timeout := event.ActionLogout, event.ActionTimeout
	a := func(id, clock string, act event.Action, opts ...evOpt) event.Event {
		return mkEvent(id, "u-17", ulsMon(clock), act, append([]evOpt{ulsOn("sa", "tab-01")}, opts...)...)
	}
	b := func(id, clock string, act event.Action, opts ...evOpt) event.Event {
		return mkEvent(id, "u-21", ulsMon(clock), act, append([]evOpt{ulsOn("sb", "tab-01")}, opts...)...)
	}
	cases := []ulsCase{
		{name: "another account logs in on an open session", events: []event.Event{
			a("e1", "10:00:00", login), a("e2", "10:01:00", view), b("e3", "10:03:00", login), b("e4", "10:04:00", view), b("e5", "10:05:00", logout),
			a("e6", "10:09:00", timeout),
		}, want: []string{"u-17 device-handover [e2 e3] medium"}},
		{name: "another account acts without logging in", events: []event.Event{
			a("e1", "10:00:00", view), b("e2", "10:03:00", view, subject("c-7", "safeguarding")),
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
			a("e1", "10:00:00", view), mkEvent("e2", "u-17", ulsMon("10:02:00"), login, ulsOn("sa2", "tab-01")),
		}},
		{name: "a failed login of another account", events: []event.Event{
			a("e1", "10:00:00", view), b("e2", "10:02:00", event.ActionLoginFailed), b("e3", "10:02:30", login, failed()),
		}},
		{name: "another account's logout or lock is no handover and ends nothing", events: []event.Event{
			a("e1", "10:00:00", view), b("e2", "10:02:00", logout), b("e3", "10:03:00", lock), b("e4", "10:04:00", view),
		}, want: []string{"u-17 device-handover [e1 e4] medium"}},
		{name: "back and forth", events: []event.Event{
			a("e1", "10:00:00", view), b("e2", "10:02:00", view), a("e3", "10:04:00", view),
		}, want: []string{"u-17 device-handover [e1 e2] medium", "u-21 device-handover [e2 e3] medium"}},
		{name: "one account leaving sessions open twice is one episode", events: []event.Event{
			a("e1", "10:00:00", view), b("e2", "10:02:00", view), b("e3", "10:03:00", logout),
			a("e4", "10:20:00", login), a("e5", "10:21:00", view), mkEvent("e6", "u-40", ulsMon("10:25:00"), login, ulsOn("sc", "tab-01")),
		}, want: []string{"u-17 device-handover [e1 e2 e5 e6] medium"}},
		{name: "other devices are apart", events: []event.Event{
			a("e1", "10:00:00", view), mkEvent("e2", "u-21", ulsMon("10:02:00"), login, ulsOn("sb", "tab-02")),
		}},
		{name: "without a device nothing is judged", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, ulsOn("sa", "")), mkEvent("e2", "u-21", ulsMon("10:02:00"), view, ulsOn("sa", "")),
		}},
		{name: "a device not in devices.csv", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, ulsOn("sa", "x-1")), mkEvent("e2", "u-21", ulsMon("10:02:00"), login, ulsOn("sb", "x-1")),
		}, want: []string{"u-17 device-handover [e1 e2] medium"}},
		{name: "a personal laptop", events: []event.Event{
			mkEvent("e1", "u-17", ulsMon("10:00:00"), view, ulsOn("sa", "lap-17")), mkEvent("e2", "u-21", ulsMon("10:02:00"), login, ulsOn("sb", "lap-17")),
		}, want: []string{"u-17 device-handover [e1 e2] medium"}},

		// Knobs: the policy of the account that left its session open.
		{name: "open_for", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:12:00", login)},
			policy: withULS(func(p *UnlockedSessionPolicy) { p.OpenFor = 10 * time.Minute })},
		{name: "open_for per device kind", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:12:00", login)},
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.DeviceKinds = map[string]UnlockedSessionKnobs{reference.DeviceSharedTablet: {OpenFor: 10 * time.Minute}}
			})},
		{name: "switched off for the kind", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:02:00", login)},
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.DeviceKinds = map[string]UnlockedSessionKnobs{reference.DeviceSharedTablet: {DeviceHandover: new(false)}}
			})},
		{name: "holder's team exempt", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:02:00", login)},
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.Teams = map[string]UnlockedSessionKnobs{"webster-court": {Exempt: new(true)}}
			})},
		{name: "newcomer's role exempt does not matter", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:02:00", login)},
			want: []string{"u-17 device-handover [e1 e2] medium"},
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.Roles = map[string]UnlockedSessionKnobs{"night-carer": {Exempt: new(true)}}
			})},
		{name: "holder's severity", events: []event.Event{a("e1", "10:00:00", view), b("e2", "10:02:00", login)},
			want: []string{"u-17 device-handover [e1 e2] high"},
			policy: withULS(func(p *UnlockedSessionPolicy) {
				p.Roles = map[string]UnlockedSessionKnobs{"support-worker": {Severity: alert.SeverityHigh}}
			})},
	}
	runULSCases(t, cases, "device-handover")
}

func runULSCases(t *testing.T, cases []ulsCase, golden string) {
	t.Helper()
	var g strings.Builder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy()
			p.Risks = map[string][]RiskRef{}
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
				} else if jsonOf(t, as) != jsonOf(t, first) {
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
	checkGolden(t, "unlocked-session-"+golden+".golden", g.String())
}

// TestUnlockedSessionLateEvents: events out of order within the lateness
// bound are judged as if in order; an event late beyond it, older than the
// session's or device's state, changes nothing.
func TestUnlockedSessionLateEvents(t *testing.T) {
	tab := ulsOn("s1", "tab-01")
	inOrder := []event.Event{
		mkEvent("e1", "u-17", ulsMon("10:00:00"), event.ActionView, tab),
		mkEvent("e2", "u-17", ulsMon("10:04:00"), event.ActionLock, tab),
		mkEvent("e3", "u-17", ulsMon("10:30:00"), event.ActionUnlock, tab),
		mkEvent("e4", "u-17", ulsMon("10:31:00"), event.ActionView, tab),
		mkEvent("e5", "u-21", ulsMon("10:33:00"), event.ActionLogin, ulsOn("s2", "tab-01")),
	}
	p := testPolicy()
	want, _ := ulsAlerts(t, p, inOrder, 1)
	if !reflect.DeepEqual(want, []string{"u-17 device-handover [e4 e5] medium"}) {
		t.Fatalf("in order: %q", want)
	}
	// The lock arrives last, 29 minutes late: within a 1h bound the same.
	shuffled := []event.Event{inOrder[0], inOrder[2], inOrder[3], inOrder[4], inOrder[1]}
	o := Options{Orgs: map[string]OrgPolicy{testOrg: p}, Roster: ulsRoster(), Lateness: time.Hour}
	e := newEngine(t, o)
	alerts := map[string]alert.Alert{}
	run(t, e, shuffled, 1, alerts, nil)
	flush(e, alerts, nil)
	var got []string
	for _, a := range sortedAlerts(alerts) {
		if a.Check == CheckUnlockedSession {
			got = append(got, fmt.Sprintf("%s %s %v %s", a.ActorID, a.Pattern, a.EventIDs, a.Severity))
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("within the bound: %q, want %q", got, want)
	}
	// Judged on arrival, the late lock cannot unsay the gap e1→e3 (which
	// ends at an unlock, so is not one) nor add one: it is ignored.
	o.Lateness = NoLateness
	e = newEngine(t, o)
	alerts = map[string]alert.Alert{}
	run(t, e, shuffled, 1, alerts, nil)
	flush(e, alerts, nil)
	got = got[:0]
	for _, a := range sortedAlerts(alerts) {
		if a.Check == CheckUnlockedSession {
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
		mkEvent("e1", "u-17", ulsMon("10:00:00"), event.ActionView, tab),
		mkEvent("e2", "u-17", ulsMon("10:15:00"), event.ActionView, tab),
		mkEvent("e3", "u-17", ulsMon("10:20:00"), event.ActionView, tab),
		mkEvent("e4", "u-21", ulsMon("10:22:00"), event.ActionLogin, ulsOn("s2", "tab-01")),
		mkEvent("e5", "u-17", ulsMon("10:40:00"), event.ActionView, tab),
		mkEvent("e6", "u-21", ulsMon("10:41:00"), event.ActionLogout, ulsOn("s2", "tab-01")),
	}
	o := Options{Orgs: map[string]OrgPolicy{testOrg: testPolicy()}, Roster: ulsRoster(), Lateness: NoLateness}
	single := map[string]alert.Alert{}
	e := newEngine(t, o)
	run(t, e, events, 1, single, nil)
	flush(e, single, nil)
	want := jsonOf(t, sortedAlerts(single))
	for cut := 1; cut < len(events); cut++ {
		alerts, state := map[string]alert.Alert{}, map[string][]byte{}
		run(t, newEngine(t, o), events[:cut], 1, alerts, state)
		var sessions, devices, held int
		for k := range state {
			sessions += b2i(strings.HasPrefix(k, "rules/"+CheckUnlockedSession+"/sessions/"))
			devices += b2i(strings.HasPrefix(k, "rules/"+CheckUnlockedSession+"/devices/"))
			held += b2i(strings.HasPrefix(k, "rules/"+CheckUnlockedSession+"/handovers/"))
		}
		if sessions == 0 || devices == 0 || (cut == 4 || cut == 5) != (held == 1) {
			t.Fatalf("cut %d: %d sessions, %d devices and %d held handovers saved", cut, sessions, devices, held)
		}
		second := newEngine(t, o)
		if err := second.Restore(entries(state)); err != nil {
			t.Fatal(err)
		}
		run(t, second, events[cut:], 1, alerts, state)
		flush(second, alerts, state)
		if got := jsonOf(t, sortedAlerts(alerts)); got != want {
			t.Errorf("cut %d: restored run differs", cut)
			diffAlerts(t, single, alerts)
		}
	}
	var got []string
	for _, a := range sortedAlerts(single) {
		if a.Check == CheckUnlockedSession {
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
	o := Options{Orgs: map[string]OrgPolicy{testOrg: testPolicy()}, Roster: ulsRoster(), Lateness: NoLateness}
	e := newEngine(t, o)
	state := map[string][]byte{}
	run(t, e, []event.Event{
		mkEvent("e1", "u-17", ulsMon("10:00:00"), event.ActionLogin, tab),
		mkEvent("e2", "u-17", ulsMon("10:01:00"), event.ActionView, tab),
		mkEvent("e3", "u-17", ulsMon("10:02:00"), event.ActionLogout, tab),
		mkEvent("e4", "u-21", ulsMon("10:03:00"), event.ActionView, ulsOn("s2", "pc-01")),
	}, 10, nil, state)
	left := only(entries(state), "rules/"+CheckUnlockedSession+"/")
	if len(left) != 2 { // u-21's session and pc-01
		t.Fatalf("state left: %v", left)
	}
	// Two steps: a jump beyond MaxAhead would not move the clock.
	run(t, e, []event.Event{mkEvent("e5", "u-40", lt("2026-03-10 06:00:00"), event.ActionView, ulsOn("s3", ""))}, 10, nil, state)
	if left = only(entries(state), "rules/"+CheckUnlockedSession+"/"); len(left) != 3 {
		t.Fatalf("state forgotten before the horizon: %v", left)
	}
	run(t, e, []event.Event{mkEvent("e6", "u-40", lt("2026-03-10 12:00:00"), event.ActionView, ulsOn("s4", ""))}, 10, nil, state)
	left = only(entries(state), "rules/"+CheckUnlockedSession+"/")
	if len(left) != 2 || !strings.HasSuffix(left[0].Key, "s3") || !strings.HasSuffix(left[1].Key, "s4") {
		t.Fatalf("state left after the horizon: %v", left)
	}
}

func TestUnlockedSessionPolicyValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    UnlockedSessionPolicy
		err  string
	}{
		{"negative limit", UnlockedSessionPolicy{UnlockedSessionKnobs: UnlockedSessionKnobs{Limit: -time.Minute}}, "negative"},
		{"limit over a day", UnlockedSessionPolicy{UnlockedSessionKnobs: UnlockedSessionKnobs{Limit: 25 * time.Hour}}, "exceed"},
		{"new session before the limit", UnlockedSessionPolicy{DeviceKinds: map[string]UnlockedSessionKnobs{"desktop": {Limit: 13 * time.Hour}}}, "device kind desktop: new_session_after"},
		{"empty role", UnlockedSessionPolicy{Roles: map[string]UnlockedSessionKnobs{"": {}}}, "empty role"},
		{"bad severity", UnlockedSessionPolicy{Teams: map[string]UnlockedSessionKnobs{"t": {Severity: "urgent"}}}, "team t: unknown severity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Orgs: map[string]OrgPolicy{testOrg: {Checks: map[string]any{CheckUnlockedSession: tc.p}}}})
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
	if got := DeviceKeyedPatterns(); !reflect.DeepEqual(got, []string{PatternDeviceHandover}) {
		t.Errorf("DeviceKeyedPatterns() = %v", got)
	}
}

// withSessions gives a stream's events sessions on devices: each actor
// works on one device at a time and sometimes moves on, so that gaps,
// handovers, locks and logouts of the stream exercise unlocked-session.
func withSessions(events []event.Event, seed uint64) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 9))
	devs := []string{"tab-01", "tab-02", "pc-01", "x-9"}
	cur := map[string]int{}
	for i := range events {
		ev := &events[i]
		a := ev.Actor.ID
		if _, ok := cur[a]; !ok || rng.IntN(12) == 0 {
			cur[a] = rng.IntN(len(devs) * 3)
		}
		n := cur[a]
		ev.Session = event.Session{ID: fmt.Sprintf("%s-s%d", a, n), Device: devs[n%len(devs)]}
		if rng.IntN(20) == 0 {
			ev.Session.ID = ""
		}
	}
	return events
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
		devs = append(devs, reference.Device{DeviceID: fmt.Sprintf("d-%d", i), Org: testOrg, Kind: kind})
	}
	roster := newFakeRoster(nil, nil)
	roster.Index = reference.NewIndex(&reference.Data{Devices: devs})
	rng := rand.New(rand.NewPCG(4, 4))
	actions := []event.Action{event.ActionView, event.ActionView, event.ActionSearch, event.ActionUpdate}
	var events []event.Event
	for s := 0; len(events) < n; s++ {
		who, dev := fmt.Sprintf("u-%d", rng.IntN(actors)), fmt.Sprintf("d-%d", rng.IntN(len(devs)))
		t := lt("2026-03-02 00:00:00").Add(time.Duration(rng.Int64N(int64(7 * 24 * time.Hour))))
		add := func(who string, a event.Action) {
			events = append(events, mkEvent(fmt.Sprintf("e%06d", len(events)), who, t, a, ulsOn(fmt.Sprintf("s-%d-%s", s, who), dev)))
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
	for _, c := range Checks() {
		if c != CheckUnlockedSession {
			off = append(off, c)
		}
	}
	var alerts, evaluated int
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		e := newEngine(b, Options{Orgs: map[string]OrgPolicy{testOrg: testPolicy()}, Roster: roster, Disabled: off})
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
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(alerts)/float64(evaluated), "alerts/op")
}
