//go:build !linux

package kafkatest

import (
	"os"
	"syscall"
)

// Elsewhere the broker is a plain child: killing the pid reaches the JVM
// because scripts/kafka-broker execs it.
func sysProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
