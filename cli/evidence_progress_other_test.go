//go:build !linux

package cli

import (
	"os"
	"testing"
)

// openPTY: pseudo-terminals are opened on Linux only (CI's platform).
func openPTY(*testing.T) *os.File { return nil }
