// Package config loads dpiawatch's one YAML configuration file. The file is
// decoded strictly and validated in one place: Load reports every problem at
// once, each with file, line, column and key path, then applies defaults.
// DPIA registers named by the file are loaded too (package dpia) so that
// every check's risk references can be cross-checked before anything runs.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/dpiawatch/dpiawatch/dpia"
	"github.com/dpiawatch/dpiawatch/event"
)

// Config is the whole configuration.
type Config struct {
	DPIAs     []DPIAFile `yaml:"dpias"`
	Orgs      []Org      `yaml:"orgs"`
	Ingest    Ingest     `yaml:"ingest"`
	Store     Store      `yaml:"store"`
	Reference Reference  `yaml:"reference"`
	Checks    Checks     `yaml:"checks"`
	Alerting  Alerting   `yaml:"alerting"`
	HTTP      HTTP       `yaml:"http"`
	Web       Web        `yaml:"web"`
	Evidence  Evidence   `yaml:"evidence"` // config/evidence.go

	// File is the path Load read; Dir its directory, against which relative
	// paths were resolved.
	File string `yaml:"-"`
	Dir  string `yaml:"-"`
	// Registers holds the loaded DPIAs by id.
	Registers map[string]*dpia.Register `yaml:"-"`
	// riskChecks: DPIA id → risk id → the enabled checks evidencing it.
	riskChecks map[string]map[string][]string
}

// DPIAFile names one DPIA register file.
type DPIAFile struct {
	File string `yaml:"file"`
}

// Org is a tenant: the controller of one DPIA.
type Org struct {
	ID       string `yaml:"id"`
	Name     string `yaml:"name"`
	DPIA     string `yaml:"dpia"`
	Timezone string `yaml:"timezone"` // default Europe/London
	// OutOfHoursRoles are judged against their shifts only (CONTRACT §2),
	// e.g. an emergency duty team.
	OutOfHoursRoles []string `yaml:"out_of_hours_roles"`

	Location *time.Location `yaml:"-"` // Timezone, loaded
}

// Ingest configures event intake.
type Ingest struct {
	MaxEventBytes int       `yaml:"max_event_bytes"` // default 65536
	EventTime     EventTime `yaml:"event_time"`
	Kafka         *Kafka    `yaml:"kafka"` // nil: no Kafka (replay and demo bring their own)
}

// Systems returns the systems the configuration names, on input topics and
// feed heartbeats, sorted and once each: the fixed set the feed metrics
// label systems from.
func (c *Config) Systems() []string {
	var out []string
	if k := c.Ingest.Kafka; k != nil {
		for _, t := range k.Topics {
			out = append(out, t.System)
		}
	}
	for _, h := range c.Alerting.Heartbeats {
		out = append(out, h.System)
	}
	slices.Sort(out)
	return slices.DeleteFunc(slices.Compact(out), func(s string) bool { return s == "" })
}

// EventTime bounds the time of accepted events around now: an event older
// than MaxAge or further ahead than MaxAhead is dead-lettered
// (event_time_out_of_range). Replay applies the same window.
type EventTime struct {
	MaxAge   Duration `yaml:"max_age"`   // default 9600h (400 days: a year's DPIA review and a month's back-fill)
	MaxAhead Duration `yaml:"max_ahead"` // default 5m (producers' clock skew)
}

// Kafka configures the consumer.
type Kafka struct {
	Brokers         []string `yaml:"brokers"`
	ClientID        string   `yaml:"client_id"` // default dpiawatch
	GroupID         string   `yaml:"group_id"`  // default dpiawatch
	Topics          []Topic  `yaml:"topics"`
	DeadLetterTopic string   `yaml:"dead_letter_topic"` // default dpiawatch-dead-letter
	Batch           Batch    `yaml:"batch"`
	QueueBatches    int      `yaml:"queue_batches"` // default 4
	// SessionTimeout is how long the group waits for a silent member (one
	// that died without leaving) before handing its partitions on.
	SessionTimeout Duration `yaml:"session_timeout"` // default 30s
	TLS            TLS      `yaml:"tls"`
	SASL           SASL     `yaml:"sasl"`
	// Repartition gives the device- and team-keyed checks keyed streams of
	// their own (topics <group_id>-by-device and -by-team), so that several
	// daemons in one group judge them exactly. Default false.
	Repartition bool `yaml:"repartition"`
}

// Topic formats.
const (
	FormatAuto   = "auto"
	FormatNative = "native"
	FormatFHIR   = "fhir"
)

// Topic is one input topic.
type Topic struct {
	Name   string `yaml:"name"`
	Format string `yaml:"format"` // auto (default), native or fhir
	// Org and System label FHIR AuditEvents, which carry neither (CONTRACT §1).
	Org    string `yaml:"org"`
	System string `yaml:"system"`
	// FHIR maps the topic's AuditEvents (docs/fhir.md).
	FHIR TopicFHIR `yaml:"fhir"`
}

// TopicFHIR configures how one topic's FHIR AuditEvents map (event.FHIROptions).
type TopicFHIR struct {
	// ActorFrom is where the actor id is taken from, in order of
	// preference: identifier, reference, display. Default all three in
	// that order.
	ActorFrom []string `yaml:"actor_from"`
	// IdentifierSystems maps an identifier system (URI, or OID) to the id
	// template reference data uses, "{value}" standing for the value.
	IdentifierSystems map[string]string `yaml:"identifier_systems"`
}

// Options returns f as the event package's options; call after Validate.
func (f TopicFHIR) Options() event.FHIROptions {
	o := event.FHIROptions{IdentifierSystems: f.IdentifierSystems}
	for _, a := range f.ActorFrom {
		o.ActorFrom = append(o.ActorFrom, event.ActorSource(a))
	}
	return o
}

// Batch bounds one unit of work: stored and committed together.
type Batch struct {
	MaxEvents int      `yaml:"max_events"` // default 5000
	MaxWait   Duration `yaml:"max_wait"`   // default 250ms
}

// TLS configures the connection to the brokers.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL configures broker authentication; an empty Mechanism disables it.
type SASL struct {
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  Secret `yaml:"password"`
}

// Store configures storage.
type Store struct {
	Embedded Embedded `yaml:"embedded"`
	// ClickHouse, when set, is used instead of the embedded store (config/clickhouse.go).
	ClickHouse *ClickHouse `yaml:"clickhouse"`
	// Retention is how long either store keeps the monitor's own data
	// (config/retention.go).
	Retention Retention `yaml:"retention"`
}

// Embedded configures the embedded (SQLite) store.
type Embedded struct {
	Path        string `yaml:"path"`        // default data/dpiawatch.db
	Synchronous string `yaml:"synchronous"` // full (default), extra or normal
}

// Reference configures reference data (CONTRACT §2).
type Reference struct {
	Dir            string   `yaml:"dir"`             // default reference
	ReloadInterval Duration `yaml:"reload_interval"` // default 1m
	// Kafka, when set, reads reference rows from compacted topics
	// (config/reference_kafka.go).
	Kafka *ReferenceKafka `yaml:"kafka"`
}

// Alerting configures where alerts go.
type Alerting struct {
	DashboardURL string `yaml:"dashboard_url"` // links in notifications; default http://127.0.0.1:9464
	// PseudonymKey keys the HMAC that turns subject ids into pseudonymous
	// references in notifications; without it subjects are left out of them.
	PseudonymKey Secret  `yaml:"pseudonym_key"`
	Console      Console `yaml:"console"`
	JSONL        JSONL   `yaml:"jsonl"`
	Slack        Slack   `yaml:"slack"`

	// Routing, receivers, triage API and heartbeats (alerting_routes.go).
	Privacy         string      `yaml:"privacy"`          // minimal or standard (default)
	DigestThreshold int         `yaml:"digest_threshold"` // default 10
	API             AlertingAPI `yaml:"api"`
	Silences        Silences    `yaml:"silences"`
	Receivers       []Receiver  `yaml:"receivers"`
	Route           *Route      `yaml:"route"` // nil: every receiver gets every alert (the plain dispatcher)
	Heartbeats      []Heartbeat `yaml:"heartbeats"`
}

// Console writes alerts to standard output.
type Console struct {
	Enabled bool   `yaml:"enabled"` // default true
	Format  string `yaml:"format"`  // text (default) or json
}

// JSONL appends alerts to a file as JSON Lines; an empty Path disables it.
type JSONL struct {
	Path string `yaml:"path"`
}

// Slack posts alerts to a channel; it is enabled when Token resolves.
type Slack struct {
	Channel string `yaml:"channel"`
	Token   Secret `yaml:"token"`
	APIURL  string `yaml:"api_url"` // for tests (slacktest); empty: Slack's own
}

// HTTP configures the web UI and /metrics listener.
type HTTP struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:9464
}

// RiskChecks maps each DPIA id and risk id to the enabled checks that
// evidence it, as declared by the checks' evidences.
func (c *Config) RiskChecks() map[string]map[string][]string { return c.riskChecks }

// Load reads, validates and completes the configuration at path. The
// returned Config is nil when the diagnostics hold an error; warnings alone
// leave it usable.
func Load(path string) (*Config, Diagnostics) { return LoadWith(path, LoadOptions{}) }

// LoadOptions widens what LoadWith checks beyond the file itself.
type LoadOptions struct {
	// ResolveSecrets reads every configured secret as the daemon will at
	// start (config/secrets.go): an unset or empty variable, a missing,
	// unreadable or empty file is an error at the secret's key, a file
	// others may read a warning. check-config and run set it; commands
	// that need no secrets, and tests of the file alone, do not.
	ResolveSecrets bool
}

// LoadWith is Load with options.
func LoadWith(path string, o LoadOptions) (*Config, Diagnostics) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Diagnostics{{File: path, Message: fmt.Sprintf("cannot read configuration: %v", errors.Unwrap(err))}}
	}
	return parseWith(path, b, o)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func parse(path string, b []byte) (*Config, Diagnostics) { return parseWith(path, b, LoadOptions{}) }

func parseWith(path string, b []byte, o LoadOptions) (*Config, Diagnostics) {
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&root); err != nil {
		d := Diagnostic{File: path, Message: err.Error()}
		if errors.Is(err, io.EOF) {
			d.Message = "empty configuration"
		} else if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			d.Line, _ = strconv.Atoi(m[1])
			d.Column, d.Message = 1, m[2]
		}
		return nil, Diagnostics{d}
	}
	v := &Validator{file: path, nodes: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{},
		failed: map[string]bool{}, secret: map[string]bool{}}
	cfg := &Config{File: path, Dir: filepath.Dir(path)}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if len(cfg.Checks.Sections()) == 0 {
		// A program that loads configuration must install the checks
		// (import checks/install): without them it would run none.
		return nil, Diagnostics{{File: path, Message: "no checks are registered: this program does not install any (import github.com/dpiawatch/dpiawatch/checks/install)"}}
	}
	v.decode(doc, "", reflect.ValueOf(cfg).Elem())
	cfg.validate(v)
	cfg.Reference.Kafka.validate(v, "reference.kafka", cfg)
	if o.ResolveSecrets {
		v.resolveSecrets(cfg)
	}
	if v.diags.HasErrors() {
		v.diags.sort()
		return nil, v.diags
	}
	cfg.setDefaults(v)
	cfg.Reference.Kafka.setDefaults(v, "reference.kafka", cfg)
	v.diags.sort()
	return cfg, v.diags
}

// abs resolves p against the configuration file's directory.
func (c *Config) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// Org returns the org with the given id.
func (c *Config) Org(id string) (*Org, bool) {
	for i := range c.Orgs {
		if c.Orgs[i].ID == id {
			return &c.Orgs[i], true
		}
	}
	return nil, false
}
