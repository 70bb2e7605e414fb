package alerting

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Europe/London must be DST-correct even on minimal images.

	"github.com/slack-go/slack"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/visible"
)

// Slack's Block Kit limits, in characters.
// https://docs.slack.dev/reference/block-kit/blocks
const (
	slackMaxHeader      = 150
	slackMaxSectionText = 3000
	slackMaxFields      = 10
	slackMaxFieldText   = 2000
	slackMaxBlocks      = 50
	slackMaxContextText = 2000
	slackMaxButtonText  = 75
	slackMaxButtonURL   = 3000
	slackMaxFallback    = 3000 // Slack allows 40,000; a notification preview needs far less
)

// SlackOptions configures NewSlack.
type SlackOptions struct {
	// Name is the receiver name; default "slack".
	Name string
	// Token is the bot token (xoxb-…), with the chat:write scope.
	Token string
	// Channel is the channel id or name to post to.
	Channel string
	// DashboardURL is the web UI's base URL for the "Open in dashboard"
	// button; without it the button is left out.
	DashboardURL string
	// Pseudonymizer renders subjects; nil (or no key) leaves them out.
	Pseudonymizer *Pseudonymizer
	// Location is the time zone "when" is shown in; default Europe/London.
	Location *time.Location
	// APIURL overrides Slack's Web API base URL (tests); it ends in "/".
	APIURL string
	// Timeout bounds one API call; default 10s.
	Timeout time.Duration
	// HTTPClient replaces the default client (its Timeout then applies).
	HTTPClient *http.Client

	// Store, when set, makes messages threads: each alert's message ref
	// (channel, ts) is kept, later versions update the message and reply
	// in its thread, triage decisions are shown there, and a version whose
	// ref is stored is never posted again (see slack_thread.go).
	Store SlackStore
	// Privacy is PrivacyStandard (the default) or PrivacyMinimal.
	Privacy Privacy
	// Interactive adds the triage buttons (Slack interactivity must be
	// configured to reach the daemon's /slack/interactions).
	Interactive bool
	// Limiter pauses a channel after a 429 for its Retry-After; share one
	// between notifiers that post to the same workspace. Nil: no pause
	// beyond the retry wait of this notifier's own loop.
	Limiter *ChannelLimiter
	// Clock is the limiter's time source; default RealClock.
	Clock Clock
}

// Slack posts each alert as one Block Kit message through the Web API
// (chat.postMessage with a bot token). Retries are left to the Pipeline:
// the client is built with none, so one failure is reported once.
type Slack struct {
	opts   SlackOptions
	client *slack.Client
}

// NewSlack returns a Slack notifier.
func NewSlack(o SlackOptions) (*Slack, error) {
	if o.Token == "" {
		return nil, errors.New("slack notifier: token is required")
	}
	if o.Channel == "" {
		return nil, errors.New("slack notifier: channel is required")
	}
	if o.Name == "" {
		o.Name = "slack"
	}
	if o.Location == nil {
		loc, err := time.LoadLocation("Europe/London")
		if err != nil {
			return nil, fmt.Errorf("slack notifier: %w", err)
		}
		o.Location = loc
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: o.Timeout}
	}
	opts := []slack.Option{slack.OptionHTTPClient(hc)}
	if o.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(o.APIURL))
	}
	if o.Privacy == "" {
		o.Privacy = PrivacyStandard
	}
	if err := o.Privacy.Validate(); err != nil {
		return nil, fmt.Errorf("slack notifier: %w", err)
	}
	if o.Clock == nil {
		o.Clock = RealClock
	}
	return &Slack{opts: o, client: slack.New(o.Token, opts...)}, nil
}

// Name implements Notifier.
func (s *Slack) Name() string { return s.opts.Name }

// Notify implements Notifier: one message per alert, in order. When a post
// fails, the alerts before it were delivered (reported by *PartialError).
func (s *Slack) Notify(ctx context.Context, alerts ...alert.Alert) (bool, error) {
	if s.opts.Store != nil {
		return s.notifyThreaded(ctx, alerts)
	}
	for i, a := range alerts {
		err := s.post(ctx, func() error {
			_, _, err := s.client.PostMessageContext(ctx, s.opts.Channel, s.message(a, triageStatus{})...)
			return err
		})
		if err != nil {
			return slackFailure(i, fmt.Errorf("slack notifier: chat.postMessage: %w", err))
		}
	}
	return false, nil
}

// slackErrorKinds classifies Slack Web API errors ("ok": false) from
// chat.postMessage, chat.update and the errors common to every method
// (https://docs.slack.dev/reference/methods/chat.postMessage). An error
// not listed is taken as a broken receiver: that keeps every alert pending
// and names the error in /readyz, where a wrong guess the other way would
// give up alerts one after another.
var slackErrorKinds = map[string]ErrorKind{
	// Slack's own trouble: worth retrying.
	"ratelimited":         KindTransient,
	"rate_limited":        KindTransient,
	"internal_error":      KindTransient,
	"fatal_error":         KindTransient,
	"service_unavailable": KindTransient,
	"request_timeout":     KindTransient,

	// The set-up: token, app, workspace or channel. Nothing can be posted
	// until someone fixes it.
	"invalid_auth":                             KindReceiver,
	"not_authed":                               KindReceiver,
	"token_revoked":                            KindReceiver,
	"token_expired":                            KindReceiver,
	"account_inactive":                         KindReceiver,
	"no_permission":                            KindReceiver,
	"missing_scope":                            KindReceiver,
	"not_allowed_token_type":                   KindReceiver,
	"access_denied":                            KindReceiver,
	"accesslimited":                            KindReceiver,
	"ekm_access_denied":                        KindReceiver,
	"team_access_not_granted":                  KindReceiver,
	"enterprise_is_restricted":                 KindReceiver,
	"org_login_required":                       KindReceiver,
	"two_factor_setup_required":                KindReceiver,
	"team_added_to_org":                        KindReceiver,
	"channel_not_found":                        KindReceiver,
	"not_in_channel":                           KindReceiver,
	"is_archived":                              KindReceiver,
	"restricted_action":                        KindReceiver,
	"restricted_action_read_only_channel":      KindReceiver,
	"restricted_action_thread_only_channel":    KindReceiver,
	"restricted_action_non_threadable_channel": KindReceiver,
	"method_deprecated":                        KindReceiver,
	"deprecated_endpoint":                      KindReceiver,

	// This one message: the others can still be posted.
	"msg_too_long":            KindAlert,
	"invalid_blocks":          KindAlert,
	"invalid_blocks_format":   KindAlert,
	"no_text":                 KindAlert,
	"too_many_attachments":    KindAlert,
	"invalid_attachments":     KindAlert,
	"invalid_metadata_format": KindAlert,
	"invalid_metadata_schema": KindAlert,
	"metadata_too_large":      KindAlert,
	"invalid_arguments":       KindAlert,
	"invalid_charset":         KindAlert,
	"invalid_form_data":       KindAlert,
	"message_not_found":       KindAlert, // chat.update of a message someone deleted
	"cant_update_message":     KindAlert,
	"edit_window_closed":      KindAlert,
}

// slackFailure classifies an error from the Slack client (see Notifier)
// after sent alerts of a batch were delivered.
func slackFailure(sent int, err error) (retry bool, _ error) {
	err = classifySlack(err)
	kind, _ := classify(true, err)
	return kind == KindTransient, partial(sent, err)
}

// classifySlack wraps err in a *NotifyError unless it is transient.
func classifySlack(err error) error {
	if _, ok := errors.AsType[*NotifyError](err); ok {
		return err
	}
	if _, ok := errors.AsType[*RetryAfterError](err); ok {
		return err
	}
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
		// The client's type stays here: the loop knows only RetryAfterError.
		// The message is kept, the chain is not, so nothing outside this
		// notifier can match on slack-go's types.
		return &RetryAfterError{After: rl.RetryAfter, Err: errors.New(err.Error())}
	}
	if sc, ok := errors.AsType[slack.StatusCodeError](err); ok {
		return classifyHTTPStatus(sc.Code, err)
	}
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		kind, known := slackErrorKinds[se.Err]
		if !known {
			kind = KindReceiver
		}
		if kind == KindTransient {
			return err
		}
		return &NotifyError{Kind: kind, Reason: se.Err, Err: err}
	}
	// Network errors, timeouts, a garbled body from a proxy: transient.
	return err
}

// classifyHTTPStatus classifies a non-2xx answer of an HTTP receiver
// (webhooks, Slack incoming webhooks): 5xx, 408 and 429 are transient; a
// request the receiver found too big or malformed is that alert's fault;
// anything else (401, 403, 404, 410 …) means the set-up is wrong.
func classifyHTTPStatus(code int, err error) error {
	reason := "http " + strconv.Itoa(code)
	switch {
	case code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return err
	case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge || code == http.StatusUnprocessableEntity:
		return AlertRejected(reason, err)
	}
	return ReceiverBroken(reason, err)
}

// message renders a as Block Kit blocks and a plain-text fallback (shown
// in notifications and by clients without Block Kit).
//
// PRIVACY: only the pseudonymized subject, never the raw id; no event or
// record ids; the explanation as the rules wrote it (rules write it without
// names or subject ids).
func (s *Slack) message(a alert.Alert, status triageStatus) []slack.MsgOption {
	blocks := s.blocks(a, status)
	return append([]slack.MsgOption{
		slack.MsgOptionText(s.fallback(a), false),
		slack.MsgOptionBlocks(blocks...),
		// Unfurling would have Slack's servers fetch the dashboard link.
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
	}, unparsedText()...)
}

// unparsedText keeps a message's top-level text (the notification preview)
// from being read as mrkdwn, linked (parse=none) or turned into mentions:
// it carries an explanation and ids. Blocks say themselves how they are
// read (plainText).
func unparsedText() []slack.MsgOption {
	return []slack.MsgOption{slack.MsgOptionDisableMarkdown(), slack.MsgOptionParse(false), slack.MsgOptionLinkNames(false)}
}

// plainText is a plain_text object — no mrkdwn formatting, no links,
// mentions or emoji codes — for anything that is data rather than our own
// wording: Slack has no way to escape *, _, ~ or ` inside mrkdwn, and
// auto-links bare URLs and channel names there.
func plainText(prefix, value string, limit int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, slackText(prefix, value, limit), false, false)
}

// blocks renders a; status is its triage status (zero when untriaged).
//
// Every value is plain_text (plainText), titles included, so that a field
// reads "Actor" over "u-17" without bold: the one mrkdwn field is the
// triage status when it mentions a Slack triager, built only from our own
// wording and a checked user id.
func (s *Slack) blocks(a alert.Alert, status triageStatus) []slack.Block {
	standard := s.opts.Privacy != PrivacyMinimal
	var blocks []slack.Block
	header := strings.ToUpper(string(a.Severity)) + " · " + a.Check
	blocks = append(blocks, slack.NewHeaderBlock(plainText("", header, slackMaxHeader)))

	var fields []*slack.TextBlockObject
	field := func(title, value string) {
		if value == "" || len(fields) == slackMaxFields {
			return
		}
		fields = append(fields, plainText(title+"\n", value, slackMaxFieldText))
	}
	field("DPIA", a.DPIA)
	field("Risks", riskLines(a))
	field("When", s.when(a))
	field("Pattern", a.Pattern)
	field("Events", strconv.Itoa(a.EventCount))
	if standard {
		field("Actor", a.ActorID)
		field("Subject", s.opts.Pseudonymizer.Subject(a.SubjectID))
	}
	field("Org", a.Org)
	if s.opts.Store != nil && len(fields) < slackMaxFields {
		switch {
		case status.mrkdwn:
			fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType,
				truncate("*Triage*\n"+status.text, slackMaxFieldText), false, true))
		default:
			field("Triage", cmp.Or(status.text, "untriaged"))
		}
	}
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))

	if a.Explanation != "" && standard {
		blocks = append(blocks, slack.NewSectionBlock(plainText("", a.Explanation, slackMaxSectionText), nil, nil))
	}
	if a.Mitigation != "" {
		blocks = append(blocks, slack.NewContextBlock("", plainText("DPIA mitigation: ", a.Mitigation, slackMaxContextText)))
	}
	var buttons []slack.BlockElement
	if link := dashboardLink(s.opts.DashboardURL, a.ID); link != "" && len(link) <= slackMaxButtonURL {
		buttons = append(buttons, slack.NewButtonBlockElement("open_dashboard", a.ID,
			slack.NewTextBlockObject(slack.PlainTextType, truncate("Open in dashboard", slackMaxButtonText), false, false)).
			WithURL(link))
	}
	if s.opts.Interactive {
		buttons = append(buttons, triageButtons(a.ID)...)
	}
	if len(buttons) > 0 {
		blocks = append(blocks, slack.NewActionBlock("", buttons...))
	}
	if len(blocks) > slackMaxBlocks { // cannot happen today; keeps later additions within the limit
		blocks = blocks[:slackMaxBlocks]
	}
	return blocks
}

// riskLines lists each risk id with the DPIA's own title for it, or says
// that no risk of the DPIA covers the alert (the configuration maps its
// pattern to none: docs/dpia-mapping.md), in the web UI's words.
func riskLines(a alert.Alert) string {
	if len(a.Risks) == 0 {
		return "Not covered by the DPIA"
	}
	lines := make([]string, len(a.Risks))
	for i, r := range a.Risks {
		lines[i] = r
		if i < len(a.RiskTitles) && a.RiskTitles[i] != "" {
			lines[i] += " — " + a.RiskTitles[i]
		}
	}
	return strings.Join(lines, "\n")
}

// when renders the episode's span in local time, the day once if it fits.
func (s *Slack) when(a alert.Alert) string {
	const day, clock = "Mon 2 Jan 2006 ", "15:04 MST"
	first, last := a.FirstSeen.In(s.opts.Location), a.LastSeen.In(s.opts.Location)
	switch {
	case first.IsZero():
		return ""
	case !last.After(first):
		return first.Format(day + clock)
	case first.Format(day) == last.Format(day):
		return first.Format(day+clock) + " – " + last.Format(clock)
	default:
		return first.Format(day+clock) + " – " + last.Format(day+clock)
	}
}

func (s *Slack) fallback(a alert.Alert) string {
	text := fmt.Sprintf("%s %s/%s (DPIA %s %s)",
		strings.ToUpper(string(a.Severity)), a.Check, a.Pattern, a.DPIA, strings.Join(a.Risks, ","))
	if s.opts.Privacy != PrivacyMinimal {
		text += ": " + a.Explanation
	}
	return slackText("", text, slackMaxFallback)
}

// slackText returns prefix (our own wording) followed by value with its
// hidden characters shown as [U+202E] (visible.Text) and escaped for Slack
// (&, <, > — which Slack decodes in every text object, and which would
// otherwise form links or @-mentions), all within limit characters.
// Escaping goes rune by rune so a cut never splits an entity such as
// "&amp;".
func slackText(prefix, value string, limit int) string {
	value = visible.Text(value)
	var b strings.Builder
	b.WriteString(prefix)
	n := len([]rune(prefix))
	budget := limit - 1 // room for "…"
	runes := []rune(value)
	for i, r := range runes {
		esc := string(r)
		switch r {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		}
		w := len([]rune(esc))
		rest := len(runes) - i - 1
		if n+w > budget && !(n+w <= limit && rest == 0) {
			b.WriteString("…")
			return b.String()
		}
		b.WriteString(esc)
		n += w
	}
	return b.String()
}
