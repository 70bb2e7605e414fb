package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
	chstore "github.com/dpiawatch/dpiawatch/store/clickhouse"
)

// ClickHouseOptions maps the validated store.clickhouse configuration to
// the ClickHouse store's Options, resolving the password secret and loading
// TLS files. Logger and Registerer are left for the caller. It lives here,
// in the composition root, so that the store never reads configuration.
func ClickHouseOptions(c *config.ClickHouse) (chstore.Options, error) {
	if c == nil {
		return chstore.Options{}, errors.New("clickhouse: store.clickhouse is not configured")
	}
	o := chstore.Options{
		Addr:        c.Addr,
		Protocol:    c.Protocol,
		Username:    c.Username,
		DialTimeout: c.DialTimeout.D(),
		ReadTimeout: c.ReadTimeout.D(),
		Schema:      chstore.Schema{Database: c.Database, Cluster: c.Cluster, DedupWindow: c.DedupWindow},
		SkipMigrate: c.Migrate == "manual",
		Retention:   map[string]time.Duration{},
	}
	o.DefaultRetention = time.Duration(c.Retention.DefaultDays) * 24 * time.Hour
	for org, d := range c.Retention.Orgs {
		o.Retention[org] = time.Duration(d) * 24 * time.Hour
	}
	for _, r := range c.Readers {
		o.Schema.Readers = append(o.Schema.Readers, chstore.Reader{User: r.User, Org: r.Org})
	}
	if !c.Password.IsZero() {
		p, err := c.Password.Resolve()
		if err != nil {
			return chstore.Options{}, fmt.Errorf("clickhouse: password: %w", err)
		}
		o.Password = p
	}
	if c.TLS.Enabled {
		t, err := clickHouseTLS(c.TLS)
		if err != nil {
			return chstore.Options{}, err
		}
		o.TLS = t
	}
	return o, nil
}

func clickHouseTLS(c config.TLS) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // configured, with a warning
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: tls ca_file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("clickhouse: tls ca_file %s holds no PEM certificate", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: tls client certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}
