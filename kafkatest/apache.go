package kafkatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// InstallCommand installs the Apache Kafka jars the Apache broker needs.
const InstallCommand = "scripts/install-kafka"

// install is where an Apache broker comes from.
type install struct {
	root    string // repository root, holding scripts/
	script  string // scripts/kafka-broker
	version string // installed Kafka version
}

// findInstall locates scripts/kafka-broker and the installed jars, or
// returns an error wrapping ErrNotInstalled that says what to run.
func findInstall() (install, error) {
	root, err := repoRoot()
	if err != nil {
		return install{}, fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	if _, err := exec.LookPath("java"); err != nil {
		return install{}, fmt.Errorf("%w: java not found on PATH (Kafka 4.x needs Java 17+)", ErrNotInstalled)
	}
	in := install{root: root, script: filepath.Join(root, "scripts", "kafka-broker")}
	// Same choice as scripts/kafka-broker: KAFKA_VERSION, else the current install.
	in.version = os.Getenv("KAFKA_VERSION")
	if in.version == "" {
		b, err := os.ReadFile(filepath.Join(root, ".cache", "kafka", "current"))
		if err != nil {
			return install{}, fmt.Errorf("%w: no jars in %s/.cache/kafka; run %s", ErrNotInstalled, root, InstallCommand)
		}
		in.version = strings.TrimSpace(string(b))
	}
	if _, err := os.Stat(filepath.Join(root, ".cache", "kafka", in.version, "INSTALLED")); err != nil {
		return install{}, fmt.Errorf("%w: Kafka %s jars missing; run %s", ErrNotInstalled, in.version, InstallCommand)
	}
	return in, nil
}

// repoRoot walks up from the working directory (a package directory under
// go test) to the directory holding scripts/kafka-broker.
func repoRoot() (string, error) {
	if dir := os.Getenv("DPIAWATCH_ROOT"); dir != "" {
		return dir, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "kafka-broker")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/kafka-broker not found above the working directory (set DPIAWATCH_ROOT)")
		}
		dir = parent
	}
}

func newApache(ctx context.Context, opts Options) (*Cluster, error) {
	in, err := findInstall()
	if err != nil {
		return nil, err
	}
	dir, removeDir := opts.Dir, false
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kafkatest-"); err != nil {
			return nil, fmt.Errorf("kafkatest: %w", err)
		}
		removeDir = true
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	// Free ports are found by binding :0 and letting go, so another process
	// may grab one before the JVM binds it; a bind failure is retried.
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		c, err := startApache(ctx, opts, in, filepath.Join(dir, fmt.Sprintf("run%d", attempt)))
		if err == nil {
			if removeDir {
				c.proc.removeDir = dir
			}
			return c, nil
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) || ctx.Err() != nil {
			break
		}
		opts.Logger.Warn("kafka broker port taken, retrying", "attempt", attempt)
	}
	if removeDir {
		_ = os.RemoveAll(dir)
	}
	return nil, lastErr
}

var errAddrInUse = errors.New("address already in use")

func startApache(ctx context.Context, opts Options, in install, dir string) (*Cluster, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("kafkatest: %w", err)
	}
	logPath := filepath.Join(dir, "broker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor

	cmd := exec.Command("bash", in.script,
		"--port", strconv.Itoa(ports[0]),
		"--controller-port", strconv.Itoa(ports[1]),
		"--data-dir", filepath.Join(dir, "data"),
		"--partitions", strconv.Itoa(opts.Partitions))
	cmd.Env = append(os.Environ(), "KAFKA_VERSION="+in.version)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = dir
	cmd.SysProcAttr = sysProcAttr()
	p, err := startProcess(cmd)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: start %s: %w", in.script, err)
	}
	c := &Cluster{
		Kind:    KindApache,
		Brokers: []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))},
		LogPath: logPath,
		proc:    p,
	}
	c.initClient()
	opts.Logger.Info("kafka broker starting", "kind", KindApache, "version", in.version, "brokers", c.Brokers, "log", logPath)
	if err := c.waitReady(ctx); err != nil {
		_ = c.Close()
		tail := LogTail(logPath, 40)
		if strings.Contains(tail, "Address already in use") {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
		return nil, fmt.Errorf("kafkatest: apache kafka %s not ready: %w\n--- tail of %s ---\n%s", in.version, err, logPath, tail)
	}
	return c, nil
}

// waitReady polls until the broker answers metadata requests and a group
// coordinator is available; the latter waits out the creation of
// __consumer_offsets, which would otherwise stall the first group join.
func (c *Cluster) waitReady(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		select {
		case <-c.proc.exited:
			return fmt.Errorf("broker exited early: %v", c.proc.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("%w (last probe error: %v)", ctx.Err(), lastErr)
		case <-tick.C:
		}
		probe, cancel := context.WithTimeout(ctx, 2*time.Second)
		lastErr = c.probe(probe)
		cancel()
		if lastErr == nil {
			return nil
		}
	}
}

func (c *Cluster) probe(ctx context.Context) error {
	md, err := c.client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return err
	}
	if len(md.Brokers) == 0 {
		return errors.New("no brokers in metadata")
	}
	fc, err := c.client.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{
		Key: "kafkatest-ready", KeyType: kafka.CoordinatorKeyTypeConsumer,
	})
	if err != nil {
		return err
	}
	return fc.Error
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		defer l.Close() // held until all are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// LogTail returns the last n lines of the file at path, for failure reports.
func LogTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	const maxTail = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > maxTail {
		_, _ = f.Seek(-maxTail, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
