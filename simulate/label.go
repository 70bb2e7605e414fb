package simulate

import (
	"encoding/json"
	"fmt"
	"io"
)

// LabelRecord is one line of labels.jsonl: which injected episode an event
// belongs to.
type LabelRecord struct {
	EventID string `json:"event_id"`
	Org     string `json:"org"`
	Check   string `json:"check"`
	Pattern string `json:"pattern"`
	Episode string `json:"episode"`
}

// WriteLabel writes the label of ev (an injected event of org) as one JSON
// line.
func WriteLabel(w io.Writer, org, eventID string, l *Label) error {
	b, err := json.Marshal(LabelRecord{EventID: eventID, Org: org, Check: l.Check, Pattern: l.Pattern, Episode: l.Episode})
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("simulate: writing label: %w", err)
	}
	return nil
}
