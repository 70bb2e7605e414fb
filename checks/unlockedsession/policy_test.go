package unlockedsession

import (
	"reflect"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
)

// TestULSPolicy: overrides for every org apply before the org's own, by
// level; other orgs' are left out.
func TestULSPolicy(t *testing.T) {
	d := func(x time.Duration) *config.Duration { c := config.Duration(x); return &c }
	yes, no := true, false
	c := Config{
		Limit: config.Duration(20 * time.Minute), OpenFor: config.Duration(30 * time.Minute),
		NewSessionAfter: config.Duration(12 * time.Hour), EpisodeGap: config.Duration(time.Hour), CheckCommon: config.CheckCommon{Severity: "medium"},
		Overrides: []Override{
			{Org: "st-martins", DeviceKind: "shared-tablet", Limit: d(12 * time.Minute), Severity: "high"},
			{DeviceKind: "shared-tablet", Limit: d(8 * time.Minute), OpenFor: d(10 * time.Minute)},
			{Role: "night-carer", DeviceHandover: &no},
			{Org: "wiltshire-council", Team: "office", Exempt: &yes},
			{Org: "st-martins", UnlockedGap: &no},
		},
	}
	p := enginePolicy(c, "st-martins")
	want := Policy{
		Knobs: Knobs{
			UnlockedGap: &no, Limit: 20 * time.Minute, OpenFor: 30 * time.Minute, NewSessionAfter: 12 * time.Hour,
			EpisodeGap: time.Hour, Severity: "medium",
		},
		DeviceKinds: map[string]Knobs{"shared-tablet": {Limit: 12 * time.Minute, OpenFor: 10 * time.Minute, Severity: "high"}},
		Roles:       map[string]Knobs{"night-carer": {DeviceHandover: &no}},
		Teams:       map[string]Knobs{},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("st-martins:\n got %+v\nwant %+v", p, want)
	}
	if w := enginePolicy(c, "wiltshire-council"); w.Teams["office"].Exempt == nil || w.UnlockedGap != nil || w.DeviceKinds["shared-tablet"].Limit != 8*time.Minute {
		t.Errorf("wiltshire-council: %+v", w)
	}
}
