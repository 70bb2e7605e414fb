package event

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeNative(b *testing.B) {
	msg := []byte(contractExample)
	d := NewDecoder(DecoderOptions{})
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var ev Event
	for b.Loop() {
		if err := d.Decode(msg, &ev); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkDecodeNativeParallel shows how decoding scales across workers
// sharing one Decoder.
func BenchmarkDecodeNativeParallel(b *testing.B) {
	msg := []byte(contractExample)
	d := NewDecoder(DecoderOptions{})
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ev Event
		for pb.Next() {
			if err := d.Decode(msg, &ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b)
}

func BenchmarkDecodeFHIR(b *testing.B) {
	msg, err := os.ReadFile(filepath.Join("testdata", "fhir", "read-care-plan.json"))
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []Format{FormatFHIR, FormatAuto} {
		b.Run(string(f), func(b *testing.B) {
			d := NewDecoder(DecoderOptions{Format: f, Org: "st-martins", System: "fhir-gateway"})
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			var ev Event
			for b.Loop() {
				if err := d.Decode(msg, &ev); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
	}
}

// BenchmarkDecodeFHIRBundle decodes a searchset Bundle of 100 AuditEvents
// (the read-care-plan fixture under 100 ids) and reports events, not
// Bundles, per second.
func BenchmarkDecodeFHIRBundle(b *testing.B) {
	ae, err := os.ReadFile(filepath.Join("testdata", "fhir", "read-care-plan.json"))
	if err != nil {
		b.Fatal(err)
	}
	const n = 100
	var bundle bytes.Buffer
	bundle.WriteString(`{"resourceType":"Bundle","type":"searchset","total":100,"entry":[`)
	for i := range n {
		if i > 0 {
			bundle.WriteByte(',')
		}
		id := fmt.Sprintf(`"id": "ae-read-%04d"`, i)
		fmt.Fprintf(&bundle, `{"fullUrl":"https://crm.example.org/fhir/AuditEvent/ae-read-%04d","resource":%s,"search":{"mode":"match"}}`,
			i, bytes.Replace(ae, []byte(`"id": "ae-read-0001"`), []byte(id), 1))
	}
	bundle.WriteString(`]}`)
	msg := bundle.Bytes()
	d := NewDecoder(DecoderOptions{Format: FormatFHIR, Org: "st-martins", System: "fhir-gateway", MaxBytes: len(msg)})
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var out []Decoded
	for b.Loop() {
		out = d.DecodeAll(msg, out[:0])
		if len(out) != n || out[n-1].Err != nil {
			b.Fatalf("%d results", len(out))
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkEncode(b *testing.B) {
	ev := contractEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(&ev); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}
