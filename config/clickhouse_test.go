package config_test

import (
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
)

func TestClickHouseDefaults(t *testing.T) {
	cfg, diags := config.Load("testdata/clickhouse_ok.yaml")
	if cfg == nil {
		t.Fatalf("load: %s", diags)
	}
	ch := cfg.Store.ClickHouse
	if ch == nil {
		t.Fatal("store.clickhouse not decoded")
	}
	if ch.Database != "dpiawatch" || ch.Protocol != "native" || ch.Username != "default" || ch.Migrate != "auto" ||
		ch.DedupWindow != 10000 || ch.DialTimeout.D() != 10*time.Second || ch.ReadTimeout.D() != 5*time.Minute {
		t.Errorf("defaults: %+v", ch)
	}
	if ch.Retention.Orgs["wiltshire-council"] != 9125 || ch.Retention.DefaultDays != 2555 || ch.Cluster != "county" {
		t.Errorf("values: %+v", ch)
	}
	if cfg, _ := config.Load("testdata/defaults.yaml"); cfg != nil && cfg.Store.ClickHouse != nil {
		t.Error("without store.clickhouse the embedded store must stay the default")
	}
}
