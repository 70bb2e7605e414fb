package alerting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/silence"
	"github.com/dpiawatch/dpiawatch/store"
)

// compiledSilence is a stored silence with its matchers parsed.
type compiledSilence struct {
	s        silence.Silence
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

// DefaultSilenceMaxDuration bounds a silence when SilenceLimits.MaxDuration
// is zero: a month covers a rota change, a holiday or a supplier's
// maintenance window; anything longer is a standing decision that belongs in
// the routes of the configuration, where it is reviewed, not in a silence.
const DefaultSilenceMaxDuration = 30 * 24 * time.Hour

// SilenceLimits bounds the silences people and API clients may create
// (alerting.silences). The zero value is the safe default.
type SilenceLimits struct {
	// MaxDuration is the longest a silence may last, and how far ahead it
	// may start; zero: DefaultSilenceMaxDuration.
	MaxDuration time.Duration
	// AllowMatchAll permits silences whose matchers all match an empty
	// label, that is, (nearly) every alert.
	AllowMatchAll bool
}

func (l SilenceLimits) maxDuration() time.Duration {
	if l.MaxDuration <= 0 {
		return DefaultSilenceMaxDuration
	}
	return l.MaxDuration
}

// errMatchAll says why a silence matching every alert is refused.
var errMatchAll = errors.New(`its matchers would match every alert (at least one must not match an empty label, e.g. check="out-of-hours")`)

// Check returns why s, created or changed at now, is outside the limits:
// no comment, longer than the maximum, starting further ahead than the
// maximum, or matching every alert. Nil when within them.
func (l SilenceLimits) Check(s silence.Silence, now time.Time) error {
	maxD := l.maxDuration()
	switch {
	case strings.TrimSpace(s.Comment) == "":
		return errors.New("comment is required: why the silence")
	case s.EndsAt.Sub(s.StartsAt) > maxD:
		return fmt.Errorf("lasts %s, longer than the maximum of %s", s.EndsAt.Sub(s.StartsAt), maxD)
	case s.StartsAt.Sub(now) > maxD:
		return fmt.Errorf("starts more than %s from now", maxD)
	}
	ms, err := ParseMatchers(s.Matchers)
	if err != nil {
		return err
	}
	if !l.AllowMatchAll && !slices.ContainsFunc(ms, func(m Matcher) bool { return !m.MatchesEmpty() }) {
		return errMatchAll
	}
	return nil
}

// SilenceProblem is a stored silence outside the limits, and why.
type SilenceProblem struct {
	Silence silence.Silence
	Problem string
}

// SilencesOutOfBounds lists the silences not yet ended at now that are
// outside l, e.g. created before the limits existed. They are reported, not
// changed: ending or narrowing a silence is a person's decision, audited.
func SilencesOutOfBounds(ctx context.Context, st store.Silences, l SilenceLimits, now time.Time) ([]SilenceProblem, error) {
	ss, err := st.ListSilences(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("silences: %w", err)
	}
	var out []SilenceProblem
	for _, s := range ss {
		// A stored silence is judged from when it was last changed, so
		// that one made a month ahead is not reported for starting late.
		at := s.UpdatedAt
		if at.IsZero() || at.After(now) {
			at = now
		}
		if err := l.Check(s, at); err != nil {
			out = append(out, SilenceProblem{Silence: s, Problem: err.Error()})
		}
	}
	return out, nil
}
