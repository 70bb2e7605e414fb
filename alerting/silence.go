package alerting

import (
	"context"
	"fmt"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/store"
)

// compiledSilence is a stored silence with its matchers parsed.
type compiledSilence struct {
	s        store.Silence
	matchers []Matcher
}

// activeSilences reads the silences that have not ended at now. One whose
// matchers no longer parse is skipped (the API refuses to store such).
func activeSilences(ctx context.Context, st store.Silences, now time.Time) ([]compiledSilence, error) {
	ss, err := st.ListSilences(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("silences: %w", err)
	}
	out := make([]compiledSilence, 0, len(ss))
	for _, s := range ss {
		ms, err := ParseMatchers(s.Matchers)
		if err != nil || len(ms) == 0 {
			continue
		}
		out = append(out, compiledSilence{s: s, matchers: ms})
	}
	return out, nil
}

// silenced reports whether a silence in effect at now mutes a. Silences
// start at StartsAt and stop applying at EndsAt: an expired silence mutes
// nothing.
func silenced(ss []compiledSilence, a alert.Alert, now time.Time) bool {
	for _, s := range ss {
		if !now.Before(s.s.StartsAt) && now.Before(s.s.EndsAt) && matchAll(s.matchers, a) {
			return true
		}
	}
	return false
}
