//go:build unix

package simulate

import (
	"syscall"
	"time"
)

// cpuTime is this process's user+system CPU time: on a shared machine wall
// time says little about throughput per core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
