// Package chtest gives tests a real ClickHouse engine: the server named by
// CLICKHOUSE_ADDR (native protocol) when that is set, otherwise chDB (current
// ClickHouse, in-process in Python) behind scripts/chdb-http, ClickHouse's
// HTTP interface on a free loopback port.
//
// When neither is available the test is skipped, or fails under CI (CI set)
// or DPIAWATCH_REQUIRE_CHDB=1, naming the command that installs chDB: a
// ClickHouse suite that silently skips in CI would be coverage in name only.
package chtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// InstallCommand installs chDB for the tests.
const InstallCommand = "scripts/install-chdb"

// Server is a ClickHouse the tests may use.
type Server struct {
	Addr     string
	Protocol clickhouse.Protocol
	Username string
	Password string
	// Engine says what runs behind Addr: "chdb" or "server".
	Engine string

	cmd    *exec.Cmd
	stdin  io.Closer
	stderr *lockedBuffer
	done   chan struct{}
}

// Options returns clickhouse-go options for s, with no database chosen.
func (s *Server) Options() *clickhouse.Options {
	return &clickhouse.Options{
		Addr:        []string{s.Addr},
		Protocol:    s.Protocol,
		Auth:        clickhouse.Auth{Username: s.Username, Password: s.Password},
		DialTimeout: 5 * time.Second,
	}
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns one Server for the whole test binary, started on first use.
// The chDB front exits when the test binary does (it watches its stdin).
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = start("") })
	if sharedErr != nil {
		unavailable(tb, sharedErr)
	}
	return shared
}

// Start starts a Server of the test's own (a fresh chDB data directory), or
// returns the CLICKHOUSE_ADDR one, and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start(tb.TempDir())
	if err != nil {
		unavailable(tb, err)
	}
	tb.Cleanup(func() { _ = s.Stop() })
	return s
}

// errNoChDB marks "chDB is not installed", the one condition that may skip.
var errNoChDB = errors.New("chDB is not installed")

func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, errNoChDB) && os.Getenv("CI") == "" && os.Getenv("DPIAWATCH_REQUIRE_CHDB") != "1" {
		tb.Skipf("no ClickHouse: %v; run %s, or set CLICKHOUSE_ADDR", err, InstallCommand)
	}
	tb.Fatalf("no ClickHouse: %v; run %s, or set CLICKHOUSE_ADDR", err, InstallCommand)
}

func start(dir string) (*Server, error) {
	if addr := os.Getenv("CLICKHOUSE_ADDR"); addr != "" {
		return &Server{
			Addr: addr, Protocol: clickhouse.Native, Engine: "server",
			Username: os.Getenv("CLICKHOUSE_USERNAME"), Password: os.Getenv("CLICKHOUSE_PASSWORD"),
		}, nil
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	python := filepath.Join(root, ".cache", "chdb", "venv", "bin", "python")
	if _, err := os.Stat(filepath.Join(root, ".cache", "chdb", "INSTALLED")); err != nil {
		return nil, fmt.Errorf("%w (no %s)", errNoChDB, filepath.Join(root, ".cache", "chdb", "INSTALLED"))
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "dpiawatch-chdb-"); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(python, filepath.Join(root, "scripts", "chdb-http"), "--path", filepath.Join(dir, "chdb"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &Server{Protocol: clickhouse.HTTP, Engine: "chdb", cmd: cmd, stdin: stdin, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start chdb-http: %w", err)
	}
	go func() { _ = cmd.Wait(); close(s.done) }()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- a
			}
		}
	}()
	select {
	case s.Addr = <-addr:
	case <-s.done:
		return nil, fmt.Errorf("chdb-http exited before listening: %s", s.stderr.String())
	case <-time.After(60 * time.Second):
		_ = s.Stop()
		return nil, errors.New("chdb-http did not start within 60s")
	}
	return s, nil
}

// Stop stops a chDB front started by Start; it does nothing for a server
// named by CLICKHOUSE_ADDR.
func (s *Server) Stop() error {
	if s.cmd == nil {
		return nil
	}
	_ = s.stdin.Close() // the front exits at end of file on stdin
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	return errors.New("chdb-http did not stop within 10s; killed")
}

// Fault modes of the chDB front (see scripts/chdb-http).
const (
	FaultOff         = "off"          // serve normally
	FaultDown        = "down"         // refuse every request, unrun
	FaultLoseInserts = "lose-inserts" // run the next n INSERTs, answer them with an error
)

// ErrNoFaults is returned by SetFault for a server named by CLICKHOUSE_ADDR:
// only the chDB front has a fault switch.
var ErrNoFaults = errors.New("chtest: fault injection needs the chDB front, not a CLICKHOUSE_ADDR server")

// SetFault switches the chDB front's fault mode; n counts lost inserts.
func (s *Server) SetFault(ctx context.Context, mode string, n int) error {
	if s.Engine != "chdb" {
		return ErrNoFaults
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+s.Addr+"/dpiawatch-test/fault?mode="+url.QueryEscape(mode)+"&n="+strconv.Itoa(n), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("chtest: set fault: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("chtest: set fault %s: %s: %s", mode, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// Open opens a connection to database db (created if missing) on s, and
// drops the database when the test ends unless it was asked to keep it.
func (s *Server) Open(tb testing.TB, db string) clickhouse.Conn {
	tb.Helper()
	conn, err := clickhouse.Open(s.Options())
	if err != nil {
		tb.Fatalf("clickhouse.Open: %v", err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	if db != "" {
		if err := conn.Exec(context.Background(), "CREATE DATABASE IF NOT EXISTS `"+db+"`"); err != nil {
			tb.Fatalf("create database: %v", err)
		}
	}
	return conn
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
