// Package alerting delivers stored alerts to people: the console, a JSON Lines
// file, Slack and webhooks. It is delivery only (detection, the heartbeat
// included, lives with the checks). It is built in small stages, as
// Alertmanager's notify package is: a Notifier sends alerts to one receiver
// and says what a failure means; one Pipeline per configuration drains the
// store's outbox for each receiver through its Stages (dedup, route, group,
// silence, notify with retry) and records each settled alert version, so
// that a restart resumes where it stopped and nothing is sent twice.
//
// Privacy: alerts concern vulnerable adults and children. Receivers outside
// the store (console, Slack, files by default) never carry raw subject
// identifiers: a keyed Pseudonymizer replaces them, or they are left out.
package alerting

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/pseudonym"
)

// Notifier sends alerts to one receiver.
//
// Notify returns nil when every alert was delivered. On error, it says
// which of three kinds the failure is (see ErrorKind): retry true for a
// transient one; an error made by ReceiverBroken when the receiver cannot
// work until someone fixes its set-up; an error made by AlertRejected when
// the receiver refused the first undelivered alert itself. Any other
// non-retryable error counts as a rejection of that alert. A notifier that
// can deliver part of a batch before failing must wrap its error in a
// *PartialError saying how many of the first alerts were delivered, so that
// they are not sent again; any other error means none was delivered.
type Notifier interface {
	// Name identifies the receiver in the outbox and in metrics; it must be
	// stable across restarts and unique within a Pipeline.
	Name() string
	Notify(ctx context.Context, alerts ...alert.Alert) (retry bool, err error)
}

// ErrorKind is what a failed notification means for the queue.
type ErrorKind int

const (
	// KindTransient: try the same alerts again after a backoff.
	KindTransient ErrorKind = iota
	// KindReceiver: the receiver is broken (credentials, channel, URL).
	// Every alert would fail the same way, so none is given up: the
	// receiver is paused, fails readiness, and is probed with backoff
	// until it works again.
	KindReceiver
	// KindAlert: the receiver refused this one alert (too long, malformed);
	// it is given up with its reason recorded, and the queue moves on.
	KindAlert
)

// NotifyError is a classified notification failure. Reason is a short
// machine-readable cause (a Slack error code, "http 401"), shown in
// readiness, the outbox and the web UI; it never carries alert content.
type NotifyError struct {
	Kind   ErrorKind
	Reason string
	Err    error
}

func (e *NotifyError) Error() string { return e.Err.Error() }
func (e *NotifyError) Unwrap() error { return e.Err }

// ReceiverBroken marks err as a failure of the receiver's set-up.
func ReceiverBroken(reason string, err error) error {
	return &NotifyError{Kind: KindReceiver, Reason: reason, Err: err}
}

// AlertRejected marks err as a refusal of one alert by the receiver.
func AlertRejected(reason string, err error) error {
	return &NotifyError{Kind: KindAlert, Reason: reason, Err: err}
}

// ReasonUnclassified is recorded for a non-retryable error the notifier
// did not classify.
const ReasonUnclassified = "unclassified"

// classify applies the Notifier contract to one Notify result.
func classify(retry bool, err error) (ErrorKind, string) {
	if ne, ok := errors.AsType[*NotifyError](err); ok {
		return ne.Kind, ne.Reason
	}
	if retry {
		return KindTransient, "transient"
	}
	return KindAlert, ReasonUnclassified
}

// RetryAfterError is a transient failure for which the receiver said when
// to try again (HTTP 429 with Retry-After, Slack's rate limit, a channel
// paused by the ChannelLimiter). The delivery loop waits After instead of
// its backoff: sooner would be refused again. Every notifier reports a
// receiver's "retry after" as this type, so the loop knows no receiver's
// client library.
type RetryAfterError struct {
	After time.Duration
	Err   error // what the receiver answered; may be nil
}

func (e *RetryAfterError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("rate limited: retry after %s", e.After)
	}
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// PartialError reports that the first Sent alerts of a Notify call were
// delivered before Err stopped the rest. A non-retryable Err is charged to
// the alert at index Sent.
type PartialError struct {
	Sent int
	Err  error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("delivered %d alert(s), then: %v", e.Sent, e.Err)
}

func (e *PartialError) Unwrap() error { return e.Err }

// partial wraps err unless nothing was sent, keeping the "any other error
// means none was delivered" rule cheap for callers.
func partial(sent int, err error) error {
	if sent == 0 {
		return err
	}
	return &PartialError{Sent: sent, Err: err}
}

// Pseudonymizer is the receivers' name for pseudonym.Pseudonymizer: Slack,
// webhooks and files show the same subject pseudonyms as the web UI and the
// evidence packs, computed in one place.
type Pseudonymizer = pseudonym.Pseudonymizer

// NewPseudonymizer returns a Pseudonymizer keyed by key (pseudonym.New).
func NewPseudonymizer(key []byte) *Pseudonymizer { return pseudonym.New(key) }

// redact returns a copy of a fit for a receiver outside the store: the
// subject pseudonymized or removed, and nil lists made empty so the JSON
// shape of CONTRACT §3 never changes.
func redact(a alert.Alert, p *Pseudonymizer) alert.Alert {
	a.SubjectID = p.Subject(a.SubjectID)
	if a.EventIDs == nil {
		a.EventIDs = []string{}
	}
	if a.Risks == nil {
		a.Risks = []string{}
	}
	return a
}

// dashboardLink returns the dashboard page of alert id, or "" without a base.
func dashboardLink(base, id string) string {
	if base == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + "/alerts/" + id
}

// truncate shortens s to at most limit runes, ending in "…" when cut. It
// never splits a rune, and it drops invalid UTF-8 so receivers that reject
// it (Slack) are not handed it.
func truncate(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if limit <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
