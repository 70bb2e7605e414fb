package alerting

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
	"github.com/dpiawatch/dpiawatch/visible"
)

// Privacy says what notifications outside the store may show. Neither level
// shows names, case details (record or event ids) or raw subject ids.
type Privacy string

// Privacy levels.
const (
	// PrivacyStandard adds the actor id, the pseudonymous subject
	// reference, the explanation and triage notes.
	PrivacyStandard Privacy = "standard"
	// PrivacyMinimal shows check, severity, DPIA and risks, when, counts,
	// triage status and the dashboard link only.
	PrivacyMinimal Privacy = "minimal"
)

// Validate reports an unknown level.
func (p Privacy) Validate() error {
	switch p {
	case PrivacyStandard, PrivacyMinimal:
		return nil
	}
	return fmt.Errorf("unknown privacy level %q (minimal or standard)", string(p))
}

// SlackStore is what a threaded Slack notifier reads and writes.
type SlackStore interface {
	store.Messages
	Alert(ctx context.Context, id string) (alert.Alert, error)
	Triages(ctx context.Context, alertID string) ([]triage.Decision, error)
}

// ChannelLimiter remembers, per Slack channel, until when Slack asked us
// (429 Retry-After) not to post. Only that channel pauses: other channels,
// and other receivers, carry on.
type ChannelLimiter struct {
	clock Clock
	mu    sync.Mutex
	until map[string]time.Time
}

// NewChannelLimiter returns an empty limiter on clock (nil: RealClock).
func NewChannelLimiter(clock Clock) *ChannelLimiter {
	if clock == nil {
		clock = RealClock
	}
	return &ChannelLimiter{clock: clock, until: map[string]time.Time{}}
}

// Wait returns how long channel is still paused (0: not paused).
func (l *ChannelLimiter) Wait(channel string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.until[channel].Sub(l.clock.Now()), 0)
}

// Pause pauses channel for d.
func (l *ChannelLimiter) Pause(channel string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.clock.Now().Add(d); t.After(l.until[channel]) {
		l.until[channel] = t
	}
}

// post runs one Web API call for the channel, unless the channel is paused
// (then it fails at once with a *RetryAfterError carrying the rest of the
// pause), and pauses the channel when Slack answers 429.
func (s *Slack) post(ctx context.Context, call func() error) error {
	ch, lim := s.opts.Channel, s.opts.Limiter
	if lim == nil {
		return call()
	}
	if w := lim.Wait(ch); w > 0 {
		return &RetryAfterError{After: w, Err: fmt.Errorf("slack channel %s paused by an earlier rate limit", ch)}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := call()
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok && rl.RetryAfter > 0 {
		lim.Pause(ch, rl.RetryAfter)
	}
	return err
}

// Triage buttons: action ids the interactivity endpoint understands.
var triageActions = []struct{ action, outcome, label string }{
	{"triage_acknowledged", triage.Acknowledged, "Acknowledge"},
	{"triage_explained", triage.Explained, "Explained"},
	{"triage_confirmed_misuse", triage.ConfirmedMisuse, "Confirmed misuse"},
	{"triage_false_positive", triage.FalsePositive, "False positive"},
}

func triageButtons(alertID string) []slack.BlockElement {
	out := make([]slack.BlockElement, 0, len(triageActions))
	for _, t := range triageActions {
		b := slack.NewButtonBlockElement(t.action, alertID,
			slack.NewTextBlockObject(slack.PlainTextType, truncate(t.label, slackMaxButtonText), false, false))
		if t.outcome == triage.ConfirmedMisuse {
			b.Style = slack.StyleDanger
		}
		out = append(out, b)
	}
	return out
}

// outcomeLabel is how an outcome reads in Slack.
func outcomeLabel(outcome string) string {
	switch outcome {
	case triage.Acknowledged:
		return "Acknowledged"
	case triage.Explained:
		return "Explained (legitimate reason)"
	case triage.ConfirmedMisuse:
		return "Confirmed misuse"
	case triage.FalsePositive:
		return "False positive"
	}
	return outcome
}

// triageStatus is an alert's newest triage as its message shows it.
type triageStatus struct {
	text string // "" when untriaged
	// mrkdwn: text is our own wording and a Slack triager's mention
	// (triagedBy), to be sent as mrkdwn; otherwise it is plain text.
	mrkdwn bool
}

// status renders the newest triage of an alert for its message.
func (s *Slack) status(ctx context.Context, alertID string) (triageStatus, error) {
	ts, err := s.opts.Store.Triages(ctx, alertID)
	if err != nil || len(ts) == 0 {
		return triageStatus{}, err
	}
	t := ts[len(ts)-1]
	by, mention := triagedBy(t)
	return triageStatus{text: fmt.Sprintf("%s by %s, %s", outcomeLabel(t.Outcome), by, t.At.In(s.opts.Location).Format("Mon 2 Jan 15:04")),
		mrkdwn: mention}, nil
}

// notifyThreaded posts each alert's first version as a message and later
// versions as an update of that message plus a reply in its thread. The
// stored ref is the idempotency key: a version at or below it was sent.
func (s *Slack) notifyThreaded(ctx context.Context, alerts []alert.Alert) (bool, error) {
	for i, a := range alerts {
		if err := s.notifyOne(ctx, a); err != nil {
			return slackFailure(i, fmt.Errorf("slack notifier: %w", err))
		}
	}
	return false, nil
}

func (s *Slack) notifyOne(ctx context.Context, a alert.Alert) error {
	ref, err := s.opts.Store.MessageRef(ctx, s.opts.Name, a.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		status, err := s.status(ctx, a.ID)
		if err != nil {
			return err
		}
		var ch, ts string
		err = s.post(ctx, func() (err error) {
			ch, ts, err = s.client.PostMessageContext(ctx, s.opts.Channel, s.message(a, status)...)
			return err
		})
		if err != nil {
			return fmt.Errorf("chat.postMessage: %w", err)
		}
		return s.putRef(ctx, store.MessageRef{Receiver: s.opts.Name, AlertID: a.ID, Channel: cmpOr(ch, s.opts.Channel), TS: ts, Version: a.Version})
	case err != nil:
		return err
	case ref.Version >= a.Version && a.Version > 0:
		return nil // sent before a crash lost the outbox mark
	}
	// The episode grew: say so in the thread, then refresh the message.
	reply := fmt.Sprintf("Episode updated: %d events, last seen %s.", a.EventCount, a.LastSeen.In(s.opts.Location).Format("Mon 2 Jan 2006 15:04 MST"))
	if err := s.reply(ctx, ref, reply); err != nil {
		return err
	}
	if !ref.Digest {
		if err := s.update(ctx, ref, a); err != nil {
			return err
		}
	}
	ref.Version = a.Version
	return s.putRef(ctx, ref)
}

// putRef records a send even during shutdown: it has happened.
func (s *Slack) putRef(ctx context.Context, ref store.MessageRef) error {
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	return s.opts.Store.PutMessageRef(mctx, ref)
}

// reply posts text (our own wording, read as plain text) in ref's thread,
// with blocks when given (then text is the notification's preview).
func (s *Slack) reply(ctx context.Context, ref store.MessageRef, text string, blocks ...slack.Block) error {
	opts := append([]slack.MsgOption{slack.MsgOptionText(truncate(text, slackMaxSectionText), false),
		slack.MsgOptionTS(ref.TS), slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl()}, unparsedText()...)
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	err := s.post(ctx, func() error {
		_, _, err := s.client.PostMessageContext(ctx, ref.Channel, opts...)
		return err
	})
	if err != nil {
		return fmt.Errorf("chat.postMessage (thread): %w", err)
	}
	return nil
}

func (s *Slack) update(ctx context.Context, ref store.MessageRef, a alert.Alert) error {
	status, err := s.status(ctx, a.ID)
	if err != nil {
		return err
	}
	err = s.post(ctx, func() error {
		_, _, _, err := s.client.UpdateMessageContext(ctx, ref.Channel, ref.TS, s.message(a, status)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("chat.update: %w", err)
	}
	return nil
}

// NotifyDigest implements Digester: one message listing the alerts (at most
// as many lines as Slack's limits allow, then a count of the rest); each
// alert's later versions reply in the digest's thread.
func (s *Slack) NotifyDigest(ctx context.Context, alerts ...alert.Alert) (bool, error) {
	var fresh []alert.Alert
	for _, a := range alerts {
		if s.opts.Store != nil {
			if _, err := s.opts.Store.MessageRef(ctx, s.opts.Name, a.ID); err == nil {
				// Already has a message: a normal update keeps its thread.
				if retry, err := s.notifyThreaded(ctx, []alert.Alert{a}); err != nil {
					return retry, err
				}
				continue
			} else if !errors.Is(err, store.ErrNotFound) {
				return true, err
			}
		}
		fresh = append(fresh, a)
	}
	if len(fresh) == 0 {
		return false, nil
	}
	var ch, ts string
	err := s.post(ctx, func() (err error) {
		ch, ts, err = s.client.PostMessageContext(ctx, s.opts.Channel, s.digest(fresh)...)
		return err
	})
	if err != nil {
		return slackFailure(0, fmt.Errorf("slack notifier: chat.postMessage (digest): %w", err))
	}
	if s.opts.Store != nil {
		for _, a := range fresh {
			if err := s.putRef(ctx, store.MessageRef{Receiver: s.opts.Name, AlertID: a.ID, Channel: cmpOr(ch, s.opts.Channel), TS: ts, Version: a.Version, Digest: true}); err != nil {
				// Sent: a retry would post the digest again. Report, don't retry.
				return false, fmt.Errorf("slack notifier: record digest: %w", err)
			}
		}
	}
	return false, nil
}

// digestLines is how many alerts a digest lists one by one.
const digestLines = 40

func (s *Slack) digest(alerts []alert.Alert) []slack.MsgOption {
	fallback := fmt.Sprintf("%d dpiawatch alerts (digest)", len(alerts))
	return append([]slack.MsgOption{slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(s.digestBlocks(alerts)...),
		slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl()}, unparsedText()...)
}

func (s *Slack) digestBlocks(alerts []alert.Alert) []slack.Block {
	header := fmt.Sprintf("%d alerts · digest", len(alerts))
	blocks := []slack.Block{slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(header, slackMaxHeader), false, false))}
	var b strings.Builder
	for i, a := range alerts {
		if i == digestLines {
			fmt.Fprintf(&b, "… and %d more in the dashboard\n", len(alerts)-i)
			break
		}
		line := fmt.Sprintf("%s · %s/%s · %s %s · %d events · %s", strings.ToUpper(string(a.Severity)), a.Check, a.Pattern,
			a.DPIA, strings.Join(a.Risks, ","), a.EventCount, a.FirstSeen.In(s.opts.Location).Format("2 Jan 15:04"))
		if link := dashboardLink(s.opts.DashboardURL, a.ID); link != "" {
			line = "<" + link + "|" + escapeMrkdwn(line) + ">"
		} else {
			line = escapeMrkdwn(line)
		}
		b.WriteString("• " + line + "\n")
	}
	text := b.String()
	// Split into sections within Slack's per-block limit, on line boundaries.
	for len(text) > 0 && len(blocks) < slackMaxBlocks {
		chunk := text
		if len([]rune(chunk)) > slackMaxSectionText {
			cut := strings.LastIndex(string([]rune(chunk)[:slackMaxSectionText]), "\n")
			if cut <= 0 {
				cut = len(string([]rune(chunk)[:slackMaxSectionText]))
			}
			chunk = text[:cut]
		}
		text = strings.TrimPrefix(text[len(chunk):], "\n")
		// mrkdwn for the dashboard links, verbatim so that nothing else in
		// a line is linked; a line holds no producer data, only the names
		// of the configuration (check, pattern, DPIA, risks), escaped.
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, chunk, false, true), nil, nil))
	}
	return blocks
}

// escapeMrkdwn shows hidden characters (visible.Text) and escapes &, < and
// > as Slack's entities.
func escapeMrkdwn(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(visible.Text(s))
}

// NotifyTriage implements TriageNotifier: a reply in the alert's thread
// (who, outcome, when; the note too at the standard privacy level) and the
// message's triage status refreshed. Alerts never posted here are skipped.
func (s *Slack) NotifyTriage(ctx context.Context, t triage.Decision) (bool, error) {
	if s.opts.Store == nil {
		return false, nil
	}
	ref, err := s.opts.Store.MessageRef(ctx, s.opts.Name, t.AlertID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	// The note and a web triager's name are data: plain_text. A Slack
	// triager is mentioned, in mrkdwn built from our wording alone.
	at := t.At.In(s.opts.Location).Format("Mon 2 Jan 2006 15:04 MST")
	by, mention := triagedBy(t)
	head := plainText("", fmt.Sprintf("%s by %s at %s", outcomeLabel(t.Outcome), by, at), slackMaxSectionText)
	if mention {
		head = slack.NewTextBlockObject(slack.MarkdownType, fmt.Sprintf("*%s* by %s at %s", outcomeLabel(t.Outcome), by, at), false, true)
	}
	blocks := []slack.Block{slack.NewSectionBlock(head, nil, nil)}
	if t.Note != "" && s.opts.Privacy != PrivacyMinimal {
		blocks = append(blocks, slack.NewSectionBlock(plainText("Note: ", t.Note, slackMaxSectionText), nil, nil))
	}
	if err := s.reply(ctx, ref, fmt.Sprintf("%s at %s", outcomeLabel(t.Outcome), at), blocks...); err != nil {
		return slackFailure(0, fmt.Errorf("slack notifier: %w", err))
	}
	if ref.Digest {
		return false, nil
	}
	a, err := s.opts.Store.Alert(ctx, t.AlertID)
	if err != nil {
		return !errors.Is(err, store.ErrNotFound), err
	}
	if err := s.update(ctx, ref, a); err != nil {
		return slackFailure(0, fmt.Errorf("slack notifier: %w", err))
	}
	return false, nil
}

// Remind implements Reminder: a reply in each alert's thread.
func (s *Slack) Remind(ctx context.Context, alerts ...alert.Alert) (bool, error) {
	if s.opts.Store == nil {
		return false, nil
	}
	for _, a := range alerts {
		ref, err := s.opts.Store.MessageRef(ctx, s.opts.Name, a.ID)
		if err != nil {
			continue
		}
		if err := s.reply(ctx, ref, "Still untriaged."); err != nil {
			return slackFailure(0, err)
		}
	}
	return false, nil
}

// triagedBy names who triaged: a Slack triager as a mention (mrkdwn, true)
// when the outcome is one of ours and the user id is a plain Slack id, so
// that the text holds nothing but our wording; anyone else by name, as
// plain text (false) for plainText to escape.
func triagedBy(t triage.Decision) (string, bool) {
	id, ok := strings.CutPrefix(t.Actor, "slack:")
	if ok && isSlackID(id) && outcomeLabel(t.Outcome) != t.Outcome {
		return "<@" + id + ">", true
	}
	return t.Actor, false
}

// isSlackID reports whether id looks like a Slack user id (U0123ABCD,
// W0123ABCD): upper-case letters and digits only.
func isSlackID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for _, c := range id {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
