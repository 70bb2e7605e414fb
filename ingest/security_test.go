package ingest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/testwait"
)

// selfSigned makes a certificate for 127.0.0.1 and writes it as PEM to dir.
func selfSigned(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}

// TestKafkaConsumerTLSAndSASL runs the consumer over TLS with each SASL
// mechanism against a broker that requires them, and checks that a wrong
// password consumes nothing.
func TestKafkaConsumerTLSAndSASL(t *testing.T) {
	dir := t.TempDir()
	cert, caFile := selfSigned(t, dir)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			const topic = "secured"
			c, err := kfake.NewCluster(
				kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }),
				kfake.EnableSASL(), kfake.Superuser(mech, "dpiawatch", "s3cret-"+mech),
				kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
				kfake.SeedTopics(1, topic),
			)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tlsOpt := TLS{Enabled: true, CAFile: caFile}
			good := SASL{Mechanism: mech, Username: "dpiawatch", Password: "s3cret-" + mech}
			tlsCfg, err := tlsOpt.Config()
			if err != nil {
				t.Fatal(err)
			}
			sm, err := good.SASLMechanism()
			if err != nil {
				t.Fatal(err)
			}
			w := &kafka.Writer{Addr: kafka.TCP(c.ListenAddrs()...), Topic: topic, RequiredAcks: kafka.RequireAll,
				Transport: &kafka.Transport{TLS: tlsCfg, SASL: sm}}
			defer w.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var msgs []kafka.Message
			for i := range 50 {
				msgs = append(msgs, kafka.Message{Key: []byte(strconv.Itoa(i)), Value: testEvent(i)})
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatal(err)
			}

			consume := func(s SASL, wait time.Duration) *memProcessor {
				p := newMemProcessor()
				cons, err := New(Options{Brokers: c.ListenAddrs(), GroupID: "g-" + mech + s.Password, Topics: []Topic{{Name: topic, Format: event.FormatAuto}},
					MaxBatchWait: 50 * time.Millisecond, SessionTimeout: 6 * time.Second, TLS: tlsOpt, SASL: s, Processor: p,
					Now: func() time.Time { return testNow }}) // the events are dated March 2026
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- cons.Run(ctx) }()
				testwait.Until(wait, func() bool { return p.unique() >= len(msgs) })
				cancel()
				<-done
				return p
			}
			if p := consume(good, 30*time.Second); p.unique() != len(msgs) {
				t.Errorf("with the right credentials: stored %d of %d", p.unique(), len(msgs))
			}
			bad := good
			bad.Password = "wrong"
			if p := consume(bad, 3*time.Second); p.unique() != 0 {
				t.Errorf("with a wrong password: stored %d, want 0", p.unique())
			}
		})
	}
}
