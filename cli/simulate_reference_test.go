package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/reference/kafkaref"
	"github.com/dpiawatch/dpiawatch/simulate"
)

// The published rows read back by the loader are the simulated rows.
func TestSimulateReferenceKafka(t *testing.T) {
	c := kafkatest.StartKFake(t, 1)
	sim, err := simulate.New(simulate.Options{Org: simulate.OrgStMartins, From: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Days: 1, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	r := &simReferenceKafka{}
	cmd := &cobra.Command{}
	r.register(cmd)
	if err := cmd.ParseFlags([]string{"--reference-kafka", c.Brokers[0], "--reference-partitions", "2"}); err != nil {
		t.Fatal(err)
	}
	if err := r.publish(ctx, &env{stderr: &stderr}, sim.Reference()); err != nil {
		t.Fatal(err)
	}
	got := make(chan *reference.Data, 1)
	l, err := kafkaref.New(kafkaref.Options{Brokers: c.Brokers, Apply: func(_ context.Context, d *reference.Data) {
		select {
		case got <- d:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	lctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(lctx) }()
	var d *reference.Data
	select {
	case d = <-got:
	case <-ctx.Done():
		t.Fatal("no snapshot")
	}
	stop()
	<-done
	want, have := t.TempDir(), t.TempDir()
	if err := reference.WriteDir(want, sim.Reference()); err != nil {
		t.Fatal(err)
	}
	if err := reference.WriteDir(have, d); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{reference.FileStaff, reference.FileRelationships, reference.FileShifts, reference.FileAbsences, reference.FileDevices, reference.FileSharingAgreements} {
		a, _ := os.ReadFile(filepath.Join(want, f))
		b, _ := os.ReadFile(filepath.Join(have, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs after publishing (%d vs %d bytes)", f, len(a), len(b))
		}
	}
	t.Log(stderr.String())
}
