package config_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/config"
)

func TestReferenceKafka(t *testing.T) {
	base, err := os.ReadFile("testdata/defaults.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		section string
		errs    []string // substrings of the expected errors; none: valid
		check   func(*testing.T, *config.ReferenceKafka)
	}{
		{"defaults", "reference:\n  kafka: {}\n", nil, func(t *testing.T, r *config.ReferenceKafka) {
			if !r.Enabled || !reflect.DeepEqual(r.Brokers, []string{"localhost:9092"}) || r.ClientID != "dpiawatch" || r.PublishInterval != config.DefaultReferencePublishInterval {
				t.Errorf("defaults = %+v", r)
			}
			// subjects is optional: no topic unless one is named.
			if got := r.Topics.ByKind(); len(got) != 6 || got["sharing-agreements"] != "dpiawatch-ref-sharing-agreements" || got["subjects"] != "" {
				t.Errorf("topics = %v", got)
			}
		}},
		{"subjects named", "reference:\n  kafka:\n    topics: {subjects: dpiawatch-ref-subjects}\n", nil, func(t *testing.T, r *config.ReferenceKafka) {
			if got := r.Topics.ByKind(); len(got) != 7 || got["subjects"] != "dpiawatch-ref-subjects" {
				t.Errorf("topics = %v", got)
			}
		}},
		{"kind left to the directory", "reference:\n  kafka:\n    brokers: [\"k1:9093\"]\n    topics: {shifts: \"\", staff: people}\n", nil, func(t *testing.T, r *config.ReferenceKafka) {
			got := r.Topics.ByKind()
			if _, ok := got["shifts"]; ok || got["staff"] != "people" || len(got) != 5 || r.Brokers[0] != "k1:9093" {
				t.Errorf("topics = %v, brokers %v", got, r.Brokers)
			}
		}},
		{"disabled", "reference:\n  kafka: {enabled: false}\n", nil, func(t *testing.T, r *config.ReferenceKafka) {
			if r.Enabled {
				t.Error("enabled")
			}
		}},
		{"errors", "reference:\n  kafka:\n    brokers: [nohost]\n    publish_interval: 0s\n    topics: {staff: x, devices: x}\n",
			[]string{"reference.kafka.brokers[0]", "reference.kafka.publish_interval", "reference.kafka.topics.devices"}, nil},
		{"all empty", "reference:\n  kafka:\n    topics: {staff: \"\", relationships: \"\", shifts: \"\", absences: \"\", devices: \"\", sharing_agreements: \"\"}\n",
			[]string{"reference.kafka.topics"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := config.Parse("testdata/defaults.yaml", append(append([]byte{}, base...), tc.section...))
			if tc.errs == nil {
				if cfg == nil {
					t.Fatalf("errors:\n%s", diags)
				}
				tc.check(t, cfg.Reference.Kafka)
				return
			}
			out := diags.Errors().String()
			for _, e := range tc.errs {
				if !strings.Contains(out, e) {
					t.Errorf("no error at %s in:\n%s", e, out)
				}
			}
		})
	}
}
