package kafkatest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// brokerProcess is a running scripts/kafka-broker (which execs the JVM).
type brokerProcess struct {
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the process has been reaped
	waitErr   error         // valid once exited is closed
	removeDir string        // removed after the process is gone, if set
}

func startProcess(cmd *exec.Cmd) (*brokerProcess, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &brokerProcess{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop kills the broker's whole process group at once: its data is
// throw-away, so a controlled shutdown would only cost seconds per test.
func (p *brokerProcess) stop() error {
	err := killGroup(p.cmd.Process.Pid)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		err = errors.Join(err, fmt.Errorf("kafka broker pid %d did not exit after SIGKILL", p.cmd.Process.Pid))
	}
	if p.removeDir != "" {
		err = errors.Join(err, os.RemoveAll(p.removeDir))
	}
	return err
}
