//go:build !unix

package cli

import "time"

// processCPU is 0 where the CPU time of the process is not known.
func processCPU() time.Duration { return 0 }
