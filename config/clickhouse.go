package config

import (
	"cmp"
	"fmt"
	"net"
	"regexp"
	"slices"
	"time"
)

// ClickHouse configures the ClickHouse store (package store/clickhouse). When
// present it is used instead of the embedded store.
type ClickHouse struct {
	Addr     []string `yaml:"addr"`     // host:port of each server; required
	Database string   `yaml:"database"` // default dpiawatch
	Username string   `yaml:"username"` // default "default"
	Password Secret   `yaml:"password"`
	Protocol string   `yaml:"protocol"` // native (default) or http
	TLS      TLS      `yaml:"tls"`
	// Cluster names a ClickHouse cluster: tables are then Replicated, and
	// events Distributed, across it.
	Cluster string `yaml:"cluster"`
	// DedupWindow is how many recent event inserts the server remembers
	// to drop a retried one; default 10000.
	DedupWindow int `yaml:"dedup_window"`
	// Migrate is auto (default: the daemon migrates the schema at start)
	// or manual (`dpiawatch migrate` does, and the daemon refuses an
	// out-of-date schema).
	Migrate     string   `yaml:"migrate"`
	DialTimeout Duration `yaml:"dial_timeout"` // default 10s
	ReadTimeout Duration `yaml:"read_timeout"` // default 5m
	// Retention is how long events are kept, in days (0: kept), following
	// each DPIA's retention schedule.
	Retention ClickHouseRetention `yaml:"retention"`
	// Readers are ClickHouse accounts (e.g. Grafana's) that may read one
	// org only: migrate gives each a row policy.
	Readers []ClickHouseReader `yaml:"readers"`
}

// ClickHouseRetention sets retention in days: a default and per org.
type ClickHouseRetention struct {
	DefaultDays int            `yaml:"default_days"`
	Orgs        map[string]int `yaml:"orgs"` // org id → days
}

// ClickHouseReader is a reader account limited to one org.
type ClickHouseReader struct {
	User string `yaml:"user"`
	Org  string `yaml:"org"`
}

// ClickHouse defaults.
const (
	DefaultClickHouseDatabase    = "dpiawatch"
	DefaultClickHouseUsername    = "default"
	DefaultClickHouseProtocol    = "native"
	DefaultClickHouseDedupWindow = 10000
	DefaultClickHouseMigrate     = "auto"
	DefaultClickHouseDialTimeout = Duration(10 * time.Second)
	DefaultClickHouseReadTimeout = Duration(5 * time.Minute)
)

// maxRetentionDays is what the store's UInt16 column holds (179 years).
const maxRetentionDays = 65535

var chIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (ch *ClickHouse) validate(v *Validator, p string, c *Config) {
	if ch == nil {
		return
	}
	if len(ch.Addr) == 0 {
		v.Errorf(p+".addr", "at least one host:port is required")
	}
	for i, a := range ch.Addr {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			v.Errorf(fmt.Sprintf("%s.addr[%d]", p, i), "%q is not host:port", a)
		}
	}
	if ch.Protocol != "" && ch.Protocol != "native" && ch.Protocol != "http" {
		v.Errorf(p+".protocol", "unknown protocol %q (native or http)", ch.Protocol)
	}
	if ch.Migrate != "" && ch.Migrate != "auto" && ch.Migrate != "manual" {
		v.Errorf(p+".migrate", "unknown mode %q (auto or manual)", ch.Migrate)
	}
	if ch.Database != "" && !chIdent.MatchString(ch.Database) {
		v.Errorf(p+".database", "%q is not a plain identifier (letters, digits, _)", ch.Database)
	}
	if ch.Cluster != "" && !chIdent.MatchString(ch.Cluster) {
		v.Errorf(p+".cluster", "%q is not a plain identifier (letters, digits, _)", ch.Cluster)
	}
	if v.Set(p+".dedup_window") && ch.DedupWindow <= 0 {
		v.Errorf(p+".dedup_window", "%d is not a positive number of inserts", ch.DedupWindow)
	}
	if v.Set(p+".dial_timeout") && ch.DialTimeout <= 0 {
		v.Errorf(p+".dial_timeout", "must be longer than 0s")
	}
	if v.Set(p+".read_timeout") && ch.ReadTimeout <= 0 {
		v.Errorf(p+".read_timeout", "must be longer than 0s")
	}
	ch.Password.validate(v, p+".password")
	ch.TLS.validate(v, p+".tls")
	if !ch.TLS.Enabled && !ch.Password.IsZero() {
		v.Warnf(p+".tls.enabled", "a password without TLS crosses the network unencrypted")
	}
	orgs := make([]string, 0, len(c.Orgs))
	for _, o := range c.Orgs {
		orgs = append(orgs, o.ID)
	}
	r := &ch.Retention
	if r.DefaultDays < 0 || r.DefaultDays > maxRetentionDays {
		v.Errorf(p+".retention.default_days", "%d is outside 0 (keep) to %d days", r.DefaultDays, maxRetentionDays)
	}
	for org, d := range r.Orgs {
		if d < 0 || d > maxRetentionDays {
			v.Errorf(p+".retention.orgs."+org, "%d is outside 0 (keep) to %d days", d, maxRetentionDays)
		}
		if len(orgs) > 0 && !slices.Contains(orgs, org) {
			v.Errorf(p+".retention.orgs."+org, "org %q is not configured", org)
		}
	}
	users := map[string]bool{}
	for i, rd := range ch.Readers {
		q := fmt.Sprintf("%s.readers[%d]", p, i)
		if !chIdent.MatchString(rd.User) {
			v.Errorf(q+".user", "%q is not a plain identifier (letters, digits, _)", rd.User)
		}
		if users[rd.User] {
			v.Errorf(q+".user", "reader %q is listed twice (an account sees one org)", rd.User)
		}
		users[rd.User] = true
		if !slices.Contains(orgs, rd.Org) {
			v.Errorf(q+".org", "org %q is not configured", rd.Org)
		}
	}
}

func (ch *ClickHouse) setDefaults(c *Config) {
	if ch == nil {
		return
	}
	ch.Database = cmp.Or(ch.Database, DefaultClickHouseDatabase)
	ch.Username = cmp.Or(ch.Username, DefaultClickHouseUsername)
	ch.Protocol = cmp.Or(ch.Protocol, DefaultClickHouseProtocol)
	ch.DedupWindow = cmp.Or(ch.DedupWindow, DefaultClickHouseDedupWindow)
	ch.Migrate = cmp.Or(ch.Migrate, DefaultClickHouseMigrate)
	ch.DialTimeout = cmp.Or(ch.DialTimeout, DefaultClickHouseDialTimeout)
	ch.ReadTimeout = cmp.Or(ch.ReadTimeout, DefaultClickHouseReadTimeout)
	ch.TLS.CAFile = c.abs(ch.TLS.CAFile)
	ch.TLS.CertFile = c.abs(ch.TLS.CertFile)
	ch.TLS.KeyFile = c.abs(ch.TLS.KeyFile)
	ch.Password.File = c.abs(ch.Password.File)
}
