// Package silence holds silences: a mute on the notifications of the alerts
// its matchers select, for a time, with who set it and why. Stores keep them
// (store.Silences), every change audited; alerting applies them.
package silence

import "time"

// Silence mutes notifications of the alerts its matchers select between
// StartsAt and EndsAt. Matchers use alerting's syntax (`check="x"`,
// `severity=~"high|critical"`). A silence is never deleted, only expired
// (EndsAt moved to now), so that the audit trail stays whole.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []string  `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	UpdatedAt time.Time `json:"updated_at"`
}
