package config

import (
	"cmp"
	"fmt"
	"net"
)

// ReferenceKafka configures reading reference data from compacted Kafka
// topics, one per kind of row (package reference/kafkaref). When a
// directory is configured too, each kind with a topic is taken from Kafka
// and replaces the directory's rows of that kind whole; the directory
// supplies the kinds whose topic is "".
type ReferenceKafka struct {
	Enabled bool `yaml:"enabled"` // default true once the section is present
	// Brokers default to ingest.kafka's, and then so do client_id, tls and
	// sasl: the same cluster. Given brokers use their own tls and sasl.
	Brokers  []string             `yaml:"brokers"`
	ClientID string               `yaml:"client_id"` // default dpiawatch
	Topics   ReferenceKafkaTopics `yaml:"topics"`
	// PublishInterval is the least time between two applied snapshots
	// after the first; default 5s.
	PublishInterval Duration `yaml:"publish_interval"`
	TLS             TLS      `yaml:"tls"`
	SASL            SASL     `yaml:"sasl"`
}

// ReferenceKafkaTopics names the topic of each kind; "" leaves the kind to
// the reference directory.
type ReferenceKafkaTopics struct {
	Staff             string `yaml:"staff"`              // default dpiawatch-ref-staff
	Relationships     string `yaml:"relationships"`      // default dpiawatch-ref-relationships
	Shifts            string `yaml:"shifts"`             // default dpiawatch-ref-shifts
	Absences          string `yaml:"absences"`           // default dpiawatch-ref-absences
	Devices           string `yaml:"devices"`            // default dpiawatch-ref-devices
	SharingAgreements string `yaml:"sharing_agreements"` // default dpiawatch-ref-sharing-agreements
	// Subjects carries subjects.csv's rows (local references the web UI
	// shows); optional, so it has no default topic: "" leaves them to the
	// directory's subjects.csv.
	Subjects string `yaml:"subjects"`
}

// DefaultReferencePublishInterval is reference.kafka.publish_interval's default.
const DefaultReferencePublishInterval = Duration(5e9)

// ByKind maps the kind names of package reference/kafkaref (staff,
// relationships, shifts, absences, devices, sharing-agreements, subjects) to their
// topics, leaving out kinds with none.
func (t ReferenceKafkaTopics) ByKind() map[string]string {
	m := map[string]string{}
	for _, e := range t.entries() {
		if *e.topic != "" {
			m[e.kind] = *e.topic
		}
	}
	return m
}

type topicEntry struct {
	key, kind string
	topic     *string
	optional  bool // no default topic
}

func (t *ReferenceKafkaTopics) entries() []topicEntry {
	return []topicEntry{
		{"staff", "staff", &t.Staff, false},
		{"relationships", "relationships", &t.Relationships, false},
		{"shifts", "shifts", &t.Shifts, false},
		{"absences", "absences", &t.Absences, false},
		{"devices", "devices", &t.Devices, false},
		{"sharing_agreements", "sharing-agreements", &t.SharingAgreements, false},
		{"subjects", "subjects", &t.Subjects, true},
	}
}

func (r *ReferenceKafka) validate(v *Validator, p string, c *Config) {
	if r == nil || (v.Set(p+".enabled") && !r.Enabled) {
		return
	}
	if len(r.Brokers) == 0 && c.Ingest.Kafka == nil {
		v.Errorf(p+".brokers", "no brokers, and no ingest.kafka to take them from")
	}
	for i, b := range r.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			v.Errorf(fmt.Sprintf("%s.brokers[%d]", p, i), "%q is not host:port", b)
		}
	}
	seen, some := map[string]bool{}, false
	for _, e := range r.Topics.entries() {
		name := *e.topic
		if !v.Set(p+".topics."+e.key) && !e.optional {
			name = "dpiawatch-ref-" + e.kind
		}
		if name == "" {
			continue
		}
		some = true
		if seen[name] {
			v.Errorf(p+".topics."+e.key, "topic %q is given for two kinds", name)
		}
		seen[name] = true
	}
	if !some {
		v.Errorf(p+".topics", "every topic is \"\": set enabled: false instead")
	}
	if v.Set(p+".publish_interval") && r.PublishInterval <= 0 {
		v.Errorf(p+".publish_interval", "must be longer than 0s")
	}
	if len(r.Brokers) > 0 {
		r.TLS.validate(v, p+".tls")
		r.SASL.validate(v, p+".sasl", r.TLS.Enabled || v.hasFailed(p+".tls.enabled"))
	}
}

func (r *ReferenceKafka) setDefaults(v *Validator, p string, c *Config) {
	if r == nil {
		return
	}
	if !v.Set(p + ".enabled") {
		r.Enabled = true
	}
	for _, e := range r.Topics.entries() {
		if !v.Set(p+".topics."+e.key) && !e.optional {
			*e.topic = "dpiawatch-ref-" + e.kind
		}
	}
	r.PublishInterval = cmp.Or(r.PublishInterval, DefaultReferencePublishInterval)
	if len(r.Brokers) == 0 && c.Ingest.Kafka != nil {
		k := c.Ingest.Kafka // defaults already applied
		r.Brokers, r.ClientID, r.TLS, r.SASL = k.Brokers, k.ClientID, k.TLS, k.SASL
	}
	r.ClientID = cmp.Or(r.ClientID, DefaultClientID)
	r.TLS.CAFile = c.abs(r.TLS.CAFile)
	r.TLS.CertFile = c.abs(r.TLS.CertFile)
	r.TLS.KeyFile = c.abs(r.TLS.KeyFile)
	r.SASL.Password.File = c.abs(r.SASL.Password.File)
}
