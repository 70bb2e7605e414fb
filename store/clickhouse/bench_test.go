package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/dpiawatch/dpiawatch/event"
)

// eventColumnTypes are the events table's types, in eventColumnList order;
// TestClickHouseEventColumnTypes keeps them equal to what migrations create.
var eventColumnTypes = []string{
	"LowCardinality(String)", "LowCardinality(String)", "String", "DateTime64(9, 'UTC')", "Int64", "UInt32", "Int32",
	"LowCardinality(String)", "String", "LowCardinality(String)", "LowCardinality(String)", "LowCardinality(String)",
	"String", "Array(LowCardinality(String))", "LowCardinality(String)", "String", "String", "LowCardinality(String)",
	"String", "Nullable(Bool)", "LowCardinality(String)", "LowCardinality(String)", "Int32", "Int64", "String", "UInt16",
	"LowCardinality(String)",
}

func TestClickHouseEventColumnTypes(t *testing.T) {
	s := openInternal(t, Options{})
	var p params
	rows, err := s.conn.Query(context.Background(), `SELECT name, type FROM system.columns WHERE database = `+p.str(s.db)+` AND table = 'events' ORDER BY position`, p.list()...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	types := map[string]string{}
	for rows.Next() {
		var n, ty string
		if err := rows.Scan(&n, &ty); err != nil {
			t.Fatal(err)
		}
		types[n] = ty
	}
	for i, name := range strings.Split(eventColumnList, ", ") {
		if types[name] != eventColumnTypes[i] {
			t.Errorf("column %s is %q in the table, %q in eventColumnTypes", name, types[name], eventColumnTypes[i])
		}
	}
}

// benchEvents returns n realistic events: a few hundred actors and
// thousands of subjects, a quarter with sensitivity labels.
func benchEvents(n int) ([]event.Event, []Position) {
	yes := true
	evs := make([]event.Event, n)
	pos := make([]Position, n)
	for i := range evs {
		e := event.Event{
			ID: fmt.Sprintf("mosaic-%09d", i), Time: t0.Add(time.Duration(i) * 50 * time.Millisecond), Org: "wiltshire-council", System: "mosaic",
			Action:  event.ActionView,
			Actor:   event.Actor{ID: fmt.Sprintf("u-%04d", i%400), Role: "social-worker", Team: fmt.Sprintf("team-%02d", i%40), Org: "wiltshire-council"},
			Subject: event.Subject{ID: fmt.Sprintf("c-%06d", i%105000)},
			Record:  event.Record{Type: "case-note", ID: fmt.Sprintf("cn-%08d", i)},
			Session: event.Session{ID: fmt.Sprintf("s-%06d", i/20), Device: fmt.Sprintf("lap-%04d", i%400), IP: "10.20.30.40", MFA: &yes},
			Outcome: event.OutcomeSuccess,
		}
		if i%4 == 0 {
			e.Subject.Sensitivity = []string{"safeguarding"}
		}
		evs[i] = e
		pos[i] = Position{Topic: "access", Partition: 3, Offset: int64(i)}
	}
	return evs, pos
}

// BenchmarkClickHouseAppend measures what the writer does per batch short of
// the network: column building, clickhouse-go's column appends and the
// Native encoding of the block, for 5,000-event batches.
func BenchmarkClickHouseAppend(b *testing.B) {
	const batch = 5000
	evs, pos := benchEvents(batch)
	token := batchToken(evs, pos)
	var cols eventCols
	var buf chproto.Buffer
	b.ReportAllocs()
	for b.Loop() {
		block := &proto.Block{ServerContext: &column.ServerContext{VersionMajor: 25, VersionMinor: 8, Timezone: time.UTC}}
		for i, name := range strings.Split(eventColumnList, ", ") {
			if err := block.AddColumn(name, column.Type(eventColumnTypes[i])); err != nil {
				b.Fatal(err)
			}
		}
		cols.reset()
		for i := range evs {
			cols.add(&evs[i], &pos[i], token, 9125)
		}
		if err := cols.appendTo(func(i int, v any) error { _, err := block.Columns[i].Append(v); return err }); err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		if err := block.Encode(&buf, 0); err != nil {
			b.Fatal(err)
		}
	}
	perRow := b.Elapsed().Seconds() / float64(b.N*batch)
	b.ReportMetric(1/perRow, "rows/s")
	b.ReportMetric(float64(len(buf.Buf))/batch, "bytes/row")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkClickHouseApplyChDB measures whole Applies (lookup, insert,
// commit) of 5,000 new events through clickhouse-go over HTTP to chDB: an
// end-to-end figure for this machine, bounded by chDB and the Python
// front, not by the writer.
func BenchmarkClickHouseApplyChDB(b *testing.B) {
	s := openInternal(b, Options{})
	const batch = 5000
	evs, pos := benchEvents(batch)
	b.ReportAllocs()
	n := 0
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		n++
		for j := range evs { // new ids: every batch is new events
			evs[j].ID = fmt.Sprintf("mosaic-%04d-%05d", n, j)
			pos[j].Offset = int64(n*batch + j)
		}
		b.StartTimer()
		cpu0 := cpuTime()
		if _, err := s.Apply(context.Background(), evs, pos, nil); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - cpu0
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	// The client's own CPU (this process: the chDB server is another), which
	// the wall time, bounded by chDB, hides.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "client-cpu-µs/op")
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
