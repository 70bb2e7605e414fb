package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CompletenessPrefix is the state key prefix under which the daemon records,
// in the same durable unit as each batch, how far each org's feed is
// complete in event time: completeness/<org> holds an RFC 3339 time T such
// that every event of the org at or before T that the input will ever carry
// (less events later than the lateness bound) has been stored and judged.
// Dashboards, routine-audit sampling and evidence packs read it so that
// nothing is sampled or scored over a period the feed has not completed.
const CompletenessPrefix = "completeness/"

// ErrFeedIncomplete is returned when something needs an org's feed to be
// complete up to a time it has not reached (a routine-audit sample of a
// period the feed has not completed).
var ErrFeedIncomplete = errors.New("the feed is not complete for the period")

// StateLoader reads saved state entries: Reader's LoadState, which is all
// completeness needs (the web UI's and evidence's narrower store views
// offer it too).
type StateLoader interface {
	LoadState(ctx context.Context, prefix string) ([]StateEntry, error)
}

// CompletenessEntry is the state entry recording that org's feed is complete
// up to t.
func CompletenessEntry(org string, t time.Time) StateEntry {
	return StateEntry{Key: CompletenessPrefix + org, Value: []byte(t.UTC().Format(time.RFC3339Nano))}
}

// LoadCompleteness returns each org's completeness point as last recorded;
// an org the daemon has recorded nothing for is absent (its feed has not
// completed any period yet).
func LoadCompleteness(ctx context.Context, r StateLoader) (map[string]time.Time, error) {
	return loadCompleteness(ctx, r, CompletenessPrefix)
}

// OrgCompleteness returns org's completeness point; ok is false when none
// is recorded (the feed has not completed any period yet).
func OrgCompleteness(ctx context.Context, r StateLoader, org string) (t time.Time, ok bool, err error) {
	// The prefix of one org is also the prefix of every org whose id
	// extends it (st-martins, st-martins-north): only the exact key counts.
	m, err := loadCompleteness(ctx, r, CompletenessPrefix+org)
	if err != nil {
		return time.Time{}, false, err
	}
	t, ok = m[org]
	return t, ok, nil
}

// CheckComplete returns nil when org's feed is complete up to end (every
// event before end is in), else an error wrapping ErrFeedIncomplete that
// says how far it is.
func CheckComplete(ctx context.Context, r StateLoader, org string, end time.Time) error {
	t, ok, err := OrgCompleteness(ctx, r, org)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("%s: not yet complete for any period, needed up to %s: %w", org, end.UTC().Format(time.RFC3339), ErrFeedIncomplete)
	case end.After(t):
		return fmt.Errorf("%s: complete up to %s, needed up to %s: %w", org, t.UTC().Format(time.RFC3339Nano), end.UTC().Format(time.RFC3339), ErrFeedIncomplete)
	}
	return nil
}

func loadCompleteness(ctx context.Context, r StateLoader, prefix string) (map[string]time.Time, error) {
	entries, err := r.LoadState(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("load feed completeness: %w", err)
	}
	out := make(map[string]time.Time, len(entries))
	for _, e := range entries {
		org := strings.TrimPrefix(e.Key, CompletenessPrefix)
		if e.Value == nil || org == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, string(e.Value))
		if err != nil {
			return nil, fmt.Errorf("feed completeness of %s: %w", org, err)
		}
		out[org] = t
	}
	return out, nil
}
