package chtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
)

func TestClickHouseSmoke(t *testing.T) {
	s := chtest.Start(t)
	conn := s.Open(t, "smoke")
	ctx := context.Background()
	if err := conn.Exec(ctx, "CREATE TABLE smoke.t (a UInt32, b String, c LowCardinality(String), d DateTime64(9,'UTC'), e Array(String), f Nullable(UInt8)) ENGINE=MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window=100"); err != nil {
		t.Fatal(err)
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO smoke.t")
	if err != nil {
		t.Fatal(err)
	}
	one := uint8(1)
	for i := range 3 {
		if err := b.Append(uint32(i), "x'y", "lc", time.Unix(0, 123456789), []string{"a", "b"}, &one); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT a, b, c, d, e, f FROM smoke.t WHERE b = ? ORDER BY a", "x'y")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a uint32
		var bb, c string
		var d time.Time
		var e []string
		var f *uint8
		if err := rows.Scan(&a, &bb, &c, &d, &e, &f); err != nil {
			t.Fatal(err)
		}
		t.Log(a, bb, c, d.UnixNano(), e, *f)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "SELECT nosuch FROM smoke.t"); err == nil {
		t.Fatal("no error")
	} else {
		t.Log(err)
	}
}
