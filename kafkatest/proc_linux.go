package kafkatest

import (
	"errors"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		// Own process group, so cleanup reaches the JVM and anything the
		// wrapper script started.
		Setpgid: true,
		// The JVM inherits this through exec: if the test binary dies
		// without running cleanups (a -timeout panic, a kill), the kernel
		// kills the broker. Linux ties it to the forking thread, which Go
		// only ends when a goroutine exits locked to it: rare in tests.
		Pdeathsig: syscall.SIGKILL,
	}
}

func killGroup(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
