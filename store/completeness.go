package store

import (
	"context"
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

// CompletenessEntry is the state entry recording that org's feed is complete
// up to t.
func CompletenessEntry(org string, t time.Time) StateEntry {
	return StateEntry{Key: CompletenessPrefix + org, Value: []byte(t.UTC().Format(time.RFC3339Nano))}
}

// LoadCompleteness returns each org's completeness point as last recorded;
// an org the daemon has recorded nothing for is absent (its feed has not
// completed any period yet).
func LoadCompleteness(ctx context.Context, r Reader) (map[string]time.Time, error) {
	entries, err := r.LoadState(ctx, CompletenessPrefix)
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
