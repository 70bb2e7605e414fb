package alerting

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/dpiawatch/dpiawatch/alert"
)

func BenchmarkConsoleText(b *testing.B) {
	c, _ := NewConsole(ConsoleOptions{W: io.Discard, Pseudonymizer: NewPseudonymizer([]byte("k")), DashboardURL: "https://d.example"})
	a := testAlert("a-1")
	for b.Loop() {
		_, _ = c.Notify(context.Background(), a)
	}
}

func BenchmarkSlackBlocks(b *testing.B) {
	s, _ := NewSlack(SlackOptions{Token: "xoxb-1", Channel: "C1", DashboardURL: "https://d.example", Pseudonymizer: NewPseudonymizer([]byte("k"))})
	a := testAlert("a-1")
	for b.Loop() {
		_ = s.blocks(a, triageStatus{})
	}
}

// BenchmarkFileBatch100 measures one fsynced batch of 100 alerts.
func BenchmarkFileBatch100(b *testing.B) {
	f, _ := NewFile(FileOptions{Path: filepath.Join(b.TempDir(), "alerts.jsonl")})
	batch := make([]alert.Alert, 100)
	for i := range batch {
		batch[i] = testAlert(fmt.Sprintf("a-%d", i))
	}
	for b.Loop() {
		if _, err := f.Notify(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "alerts/s")
}
