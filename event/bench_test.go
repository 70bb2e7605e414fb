package event

import (
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
