package config_test

import (
	"slices"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
)

// TestRetentionFor resolves each org's periods class by class: the org's
// override, else its DPIA's schedule, else the default, else kept.
func TestRetentionFor(t *testing.T) {
	cfg, diags := config.Load("testdata/retention_ok.yaml")
	if cfg == nil {
		t.Fatalf("load: %v", diags)
	}
	tests := []struct {
		org  string
		want []config.ClassRetention
	}{
		{"care-home", []config.ClassRetention{
			{"events", 730, "DPIA monitor-schedule retention schedule (step 2, retention)"},
			{"check_state", 30, "DPIA monitor-schedule retention schedule (step 2, retention)"},
			{"view_logs", 180, "config store.retention.orgs.care-home.view_logs_days"},
			{"alerts", 2190, "DPIA monitor-schedule retention schedule (step 2, retention)"},
		}},
		{"st-martins", []config.ClassRetention{ // the DPIA states no period
			{"events", 400, "config store.retention.default.events_days"},
			{"check_state", 30, "config store.retention.default.check_state_days"},
			{"view_logs", 400, "config store.retention.default.view_logs_days"},
			{"alerts", 0, "config store.retention.default.alerts_days"},
		}},
		{"unknown-org", []config.ClassRetention{
			{"events", 400, "config store.retention.default.events_days"},
			{"check_state", 30, "config store.retention.default.check_state_days"},
			{"view_logs", 400, "config store.retention.default.view_logs_days"},
			{"alerts", 0, "config store.retention.default.alerts_days"},
		}},
	}
	for _, tc := range tests {
		if got := cfg.RetentionFor(tc.org); !slices.Equal(got, tc.want) {
			t.Errorf("RetentionFor(%s) =\n%+v\nwant\n%+v", tc.org, got, tc.want)
		}
	}
	if cfg.Store.Retention.Interval.D() != 30*time.Minute || cfg.Store.Retention.ChunkRows != 2000 {
		t.Errorf("interval, chunk_rows = %v, %d", cfg.Store.Retention.Interval, cfg.Store.Retention.ChunkRows)
	}
}

// TestRetentionLegacyClickHouse: the older store.clickhouse.retention keys
// still set the events period (with a deprecation warning), and nothing is
// deleted when no key is set at all.
func TestRetentionLegacyClickHouse(t *testing.T) {
	cfg, diags := config.Load("testdata/clickhouse_ok.yaml")
	if cfg == nil {
		t.Fatalf("load: %v", diags)
	}
	got := cfg.RetentionFor("wiltshire-council")
	want := []config.ClassRetention{
		{"events", 9125, "config store.clickhouse.retention.orgs.wiltshire-council"},
		{"check_state", 0, "not set: kept"}, {"view_logs", 0, "not set: kept"}, {"alerts", 0, "not set: kept"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("RetentionFor = %+v, want %+v", got, want)
	}
	if got := cfg.RetentionFor("other")[0]; got.Days != 2555 {
		t.Errorf("other org's events = %+v, want the legacy default 2555", got)
	}
	d, _ := config.Load("testdata/defaults.yaml")
	if d.Store.Retention.Interval != config.DefaultRetentionInterval || d.Store.Retention.ChunkRows != config.DefaultRetentionChunkRows {
		t.Errorf("defaults: %+v", d.Store.Retention)
	}
	for _, c := range d.RetentionFor(d.Orgs[0].ID) {
		if c.Days != 0 {
			t.Errorf("with no retention key %s is deleted after %d days", c.Class, c.Days)
		}
	}
}
