package chtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
)

// TestClickHouseFront checks what the store relies on through the HTTP front
// (or a real server): batch inserts of the column types used, positional
// binding, insert_deduplication_token, and server errors.
func TestClickHouseFront(t *testing.T) {
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
	// The same token again: ClickHouse drops the block.
	for range 2 {
		dctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": "tok-1"}))
		b, err := conn.PrepareBatch(dctx, "INSERT INTO smoke.t")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(uint32(9), "dedup", "lc", time.Unix(0, 0), []string{}, nil); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM smoke.t WHERE b = 'dedup'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows inserted twice under one token: %d (%v), want 1", n, err)
	}
	rows, err := conn.Query(ctx, "SELECT a, b, c, d, e, f FROM smoke.t WHERE b = ? ORDER BY a", "x'y")
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for rows.Next() {
		var a uint32
		var bb, c string
		var d time.Time
		var e []string
		var f *uint8
		if err := rows.Scan(&a, &bb, &c, &d, &e, &f); err != nil {
			t.Fatal(err)
		}
		if bb != "x'y" || c != "lc" || d.UnixNano() != 123456789 || len(e) != 2 || f == nil || *f != 1 {
			t.Errorf("row %d read back as %q %q %d %v %v", a, bb, c, d.UnixNano(), e, f)
		}
		got++
	}
	if got != 3 {
		t.Errorf("read %d rows, want 3", got)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "SELECT nosuch FROM smoke.t"); err == nil || !strings.Contains(err.Error(), "UNKNOWN_IDENTIFIER") {
		t.Fatalf("a bad query: error %v, want UNKNOWN_IDENTIFIER", err)
	}

	// The front's fault switch, which the outage tests use.
	if err := s.SetFault(ctx, chtest.FaultDown, 0); errors.Is(err, chtest.ErrNoFaults) {
		return
	} else if err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("ping answered while the front is down")
	}
	if err := conn.Exec(ctx, "SELECT 1"); err == nil || !strings.Contains(err.Error(), "fault injected") {
		t.Fatalf("query while down: %v, want the injected fault", err)
	}
	if err := s.SetFault(ctx, chtest.FaultLoseInserts, 1); err != nil {
		t.Fatal(err)
	}
	insert := func(v string) error {
		b, err := conn.PrepareBatch(ctx, "INSERT INTO smoke.t")
		if err != nil {
			return err
		}
		if err := b.Append(uint32(7), v, "lc", time.Unix(0, 0), []string{}, nil); err != nil {
			return err
		}
		return b.Send()
	}
	if err := insert("lost"); err == nil {
		t.Fatal("the lost insert reported success")
	}
	if err := insert("after"); err != nil {
		t.Fatalf("the insert after the lost one: %v", err)
	}
	if err := conn.QueryRow(ctx, "SELECT countIf(b = 'lost') + 10 * countIf(b = 'after') FROM smoke.t").Scan(&n); err != nil || n != 11 {
		t.Fatalf("lost and later insert stored %d (%v), want 11: the lost insert must be applied, once", n, err)
	}
	if err := s.SetFault(ctx, "bogus", 0); err == nil {
		t.Fatal("an unknown fault mode was accepted")
	}
}
