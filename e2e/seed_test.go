package e2e

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// killSeedEnv names the variable that fixes the seed of the kill tests'
// random choices, to re-run a failure exactly (docs/testing.md).
const killSeedEnv = "DPIAWATCH_KILL_SEED"

// killSeed returns the seed every random choice of a kill test derives from:
// $DPIAWATCH_KILL_SEED when set, a fresh random one otherwise. It is logged
// at the start, and again at the end if the test failed, with the command
// that re-runs the test with it.
func killSeed(t *testing.T) uint64 {
	t.Helper()
	seed := rand.Uint64()
	if s := os.Getenv(killSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: not an unsigned 64-bit integer", killSeedEnv, s)
		}
	}
	rerun := rerunCommand(t.Name(), seed)
	t.Logf("kill seed %d; to re-run: %s", seed, rerun)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("failed with kill seed %d; to re-run: %s", seed, rerun)
		}
	})
	return seed
}

// rerunCommand is the command that runs the test named name (a subtest's
// name has slashes) with seed.
func rerunCommand(name string, seed uint64) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + p + "$"
	}
	return killSeedEnv + "=" + strconv.FormatUint(seed, 10) + " go test -count=1 -run '" + strings.Join(parts, "/") + "' ./e2e"
}

// killWaits is how long after a run first stores events each of n kills
// falls: between 100 ms and 1.6 s, drawn from seed alone.
func killWaits(seed uint64, n int) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(100+rng.IntN(1500)) * time.Millisecond
	}
	return out
}

// killAt is the number of stored events, of total, at which the live
// replay test kills the daemon: between a quarter and seven twelfths of
// them, drawn from seed alone.
func killAt(seed uint64, total int) int64 {
	rng := rand.New(rand.NewPCG(seed, 11))
	return int64(total/4 + rng.IntN(total/3))
}

func TestKillSeed(t *testing.T) {
	t.Setenv(killSeedEnv, "18446744073709551615")
	if got := killSeed(t); got != 1<<64-1 {
		t.Fatalf("killSeed = %d with %s=18446744073709551615", got, killSeedEnv)
	}
	t.Setenv(killSeedEnv, "")
	if a, b := killSeed(t), killSeed(t); a == b {
		t.Errorf("two unset seeds are both %d: not random", a)
	}
	if got, want := rerunCommand("TestKafkaKill9NothingLostNothingTwice/apache", 42),
		"DPIAWATCH_KILL_SEED=42 go test -count=1 -run '^TestKafkaKill9NothingLostNothingTwice$/^apache$' ./e2e"; got != want {
		t.Errorf("rerunCommand = %s, want %s", got, want)
	}
}

// TestKillChoicesFromSeed: the same seed makes the same kill points, so
// that a failure re-runs exactly; another seed makes others.
func TestKillChoicesFromSeed(t *testing.T) {
	for _, seed := range []uint64{0, 1, 42, 1<<64 - 1} {
		a, b := killWaits(seed, 4), killWaits(seed, 4)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("seed %d: kill %d after %s, then %s", seed, i+1, a[i], b[i])
			}
			if a[i] < 100*time.Millisecond || a[i] >= 1600*time.Millisecond {
				t.Errorf("seed %d: kill %d after %s, outside [100ms, 1.6s)", seed, i+1, a[i])
			}
		}
		at, again := killAt(seed, 1200), killAt(seed, 1200)
		if at != again {
			t.Fatalf("seed %d: kill at %d, then at %d", seed, at, again)
		}
		if at < 300 || at >= 700 {
			t.Errorf("seed %d: kill at %d of 1200, outside [300, 700)", seed, at)
		}
	}
	if w1, w2 := killWaits(1, 4), killWaits(2, 4); w1[0] == w2[0] && w1[1] == w2[1] && w1[2] == w2[2] && w1[3] == w2[3] {
		t.Errorf("seeds 1 and 2 make the same kill points %v", w1)
	}
}
