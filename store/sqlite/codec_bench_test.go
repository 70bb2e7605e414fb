package sqlite

import (
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/storedjson"
)

// BenchmarkCodec times the JSON the embedded store writes and reads per
// row: an event's detail column (encodeEvents, decodeEvent) and an alert's
// body (writeAlerts, decodeAlert). The test imports the JSON package the
// store uses, so that the alert encode measures the same library.
func BenchmarkCodec(b *testing.B) {
	evs := benchEvents(0, 1)
	b.Run("event/encode", func(b *testing.B) {
		args := make([]any, eventColumns)
		b.ReportAllocs()
		for b.Loop() {
			if err := encodeEvents(args, evs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("event/decode", func(b *testing.B) {
		args := make([]any, eventColumns)
		if err := encodeEvents(args, evs); err != nil {
			b.Fatal(err)
		}
		r := toRow(&evs[0])
		det := args[7].(string)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeEvent(r.Org, r.System, r.ID, r.T, r.Action, r.Actor, r.Subject, det); err != nil {
				b.Fatal(err)
			}
		}
	})
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	a := alert.Alert{
		ID: "a-0123456789abcdef01234567", Check: "bulk-access", Pattern: "volume", Severity: alert.SeverityHigh,
		Org: "st-martins", ActorID: "u-17", FirstSeen: at, LastSeen: at.Add(40 * time.Minute),
		EventIDs: []string{"lmc-000000001", "lmc-000000002", "lmc-000000003", "lmc-000000004", "lmc-000000005"},
		DPIA:     "dpia-logmycare", Risks: []string{"R3", "R7"},
		Explanation: "u-17 opened 64 records in 40 minutes; their usual day peaks at 12 and their team's at 15.",
		EventCount:  64, RiskTitles: []string{"Staff browse records without a care need", "Bulk extraction of records"},
		Mitigation: "M3.2 access monitoring", ReferenceID: "ref-2f6c1b",
	}
	b.Run("alert/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := storedjson.Marshal(&a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("alert/decode", func(b *testing.B) {
		body, err := storedjson.Marshal(&a)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeAlert(1, string(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
