package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/alerting"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/rules/heartbeat"
	"github.com/dpiawatch/dpiawatch/store"
)

// delivery takes alerts from the store's outbox to the receivers: one
// alerting.Pipeline, whose routes are alerting.route or, without it, the
// default route (every receiver gets every alert, at once).
type delivery interface {
	Run(ctx context.Context) error
	Wake()
	// Ready fails while a receiver is paused because its set-up is
	// broken, naming it and why (for /readyz).
	Ready(ctx context.Context) error
}

// alertingStore is what the routed pipeline needs of the store.
type alertingStore interface {
	store.Store
	store.AlertingStore
}

// buildDelivery builds alert delivery, the triage/silences API (nil when not
// configured) and the feed heartbeat (nil when none is configured).
func buildDelivery(ctx context.Context, cfg *config.Config, st store.Store, stdout io.Writer, log *slog.Logger, reg prometheus.Registerer) (delivery, http.Handler, *heartbeat.Heartbeat, error) {
	a := cfg.Alerting
	pseudo, err := pseudonymizer(a)
	if err != nil {
		return nil, nil, nil, err
	}
	tree, err := routeTree(a)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("alerting.route: %w", err)
	}
	ast, routed := st.(alertingStore)
	if tree == nil || !routed {
		if tree != nil {
			return nil, nil, nil, fmt.Errorf("alerting.route: the configured store does not support routing, triage and silences yet")
		}
		ns, err := Notifiers(cfg, stdout, log)
		if err != nil {
			return nil, nil, nil, err
		}
		d := alerting.NewDispatcher(alerting.DispatcherOptions{Outbox: st, Notifiers: ns, Logger: log, Registerer: reg})
		return d, nil, nil, nil
	}

	ns, err := Notifiers(cfg, stdout, log)
	if err != nil {
		return nil, nil, nil, err
	}
	privacy := alerting.Privacy(a.Privacy)
	limiter := alerting.NewChannelLimiter(nil)
	for i, n := range ns {
		// The built-in Slack receiver keeps threads when routing is on.
		if _, ok := n.(*alerting.Slack); ok {
			s, err := slackReceiver(a, "slack", a.Slack.Channel, a.Slack.Token, a.Slack.APIURL, false, ast, pseudo, privacy, limiter)
			if err != nil {
				return nil, nil, nil, err
			}
			ns[i] = s
		}
	}
	for _, r := range a.Receivers {
		var n alerting.Notifier
		switch {
		case r.Slack != nil:
			n, err = slackReceiver(a, r.Name, r.Slack.Channel, r.Slack.Token, r.Slack.APIURL, r.Slack.Interactive, ast, pseudo, privacy, limiter)
		case r.SlackWebhook != nil:
			var url string
			if url, err = r.SlackWebhook.URL.Resolve(); err == nil {
				n, err = alerting.NewSlackWebhook(alerting.SlackWebhookOptions{Name: r.Name, URL: url, DashboardURL: a.DashboardURL, Pseudonymizer: pseudo, Privacy: privacy})
			}
		case r.Webhook != nil:
			var secret string
			if secret, err = r.Webhook.Secret.Resolve(); err == nil {
				n, err = alerting.NewWebhook(alerting.WebhookOptions{Name: r.Name, URL: r.Webhook.URL, Secret: []byte(secret), Pseudonymizer: pseudo})
			}
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("alerting.receivers %s: %w", r.Name, err)
		}
		ns = append(ns, n)
	}
	pl, err := alerting.NewPipeline(alerting.PipelineOptions{Store: ast, Tree: tree, Notifiers: ns, DigestThreshold: a.DigestThreshold, Logger: log, Registerer: reg})
	if err != nil {
		return nil, nil, nil, err
	}

	limits := alerting.SilenceLimits{MaxDuration: a.Silences.MaxDuration.D(), AllowMatchAll: a.Silences.AllowMatchAll}
	reportSilences(ctx, ast, limits, log)
	var api http.Handler
	if !a.API.Token.IsZero() || len(a.API.Clients) > 0 || !a.API.SlackSigningSecret.IsZero() {
		token, err := optionalSecret(a.API.Token)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("alerting.api.token: %w", err)
		}
		clients, err := apiClients(a.API.Clients, token)
		if err != nil {
			return nil, nil, nil, err
		}
		signing, err := optionalSecret(a.API.SlackSigningSecret)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("alerting.api.slack_signing_secret: %w", err)
		}
		recordRead, err := apiReadRecorder(ctx, st)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("alerting.api: the view log: %w", err)
		}
		api = alerting.NewAPI(alerting.APIOptions{Store: ast, Clients: clients, Token: token, Silences: limits,
			SlackSigningSecret: signing, RecordRead: recordRead, OnChange: pl.Wake, Logger: log})
	}

	var hb *heartbeat.Heartbeat
	if len(a.Heartbeats) > 0 {
		var sources []heartbeat.Source
		for _, h := range a.Heartbeats {
			org, _ := cfg.Org(h.Org)
			src := heartbeat.Source{Org: h.Org, System: h.System, MaxSilence: h.MaxSilence.D(), Severity: alert.Severity(h.Severity), Risks: h.Risks}
			if org != nil {
				src.DPIA = org.DPIA
				if reg := cfg.Registers[org.DPIA]; reg != nil {
					for _, id := range h.Risks {
						r, _ := reg.Risk(id)
						src.RiskTitles = append(src.RiskTitles, r.Title)
					}
				}
			}
			sources = append(sources, src)
		}
		if hb, err = heartbeat.New(ctx, heartbeat.Options{Sources: sources, Store: st, OnAlert: pl.Wake, Logger: log}); err != nil {
			return nil, nil, nil, err
		}
	}
	return pl, api, hb, nil
}

func slackReceiver(a config.Alerting, name, channel string, token config.Secret, apiURL string, interactive bool, st alertingStore,
	pseudo *alerting.Pseudonymizer, privacy alerting.Privacy, limiter *alerting.ChannelLimiter) (alerting.Notifier, error) {
	tok, err := token.Resolve()
	if err != nil {
		return nil, fmt.Errorf("slack token: %w", err)
	}
	return alerting.NewSlack(alerting.SlackOptions{Name: name, Token: tok, Channel: channel, APIURL: apiURL, DashboardURL: a.DashboardURL,
		Pseudonymizer: pseudo, Store: st, Privacy: privacy, Interactive: interactive, Limiter: limiter})
}

// apiClients resolves the clients' tokens; two clients (or a client and the
// shared token) with one token could not be told apart, so that is refused
// (config.LoadWith reports it too, positioned, when run resolves secrets).
func apiClients(cs []config.APIClient, shared string) ([]alerting.APIClient, error) {
	seen := map[string]string{}
	if shared != "" {
		seen[shared] = "alerting.api.token"
	}
	out := make([]alerting.APIClient, 0, len(cs))
	for _, c := range cs {
		tok, err := c.Token.Resolve()
		if err != nil {
			return nil, fmt.Errorf("alerting.api.clients %s: %w", c.Name, err)
		}
		if first, dup := seen[tok]; dup {
			return nil, fmt.Errorf("alerting.api.clients %s: the same token as %s", c.Name, first)
		}
		seen[tok] = "alerting.api.clients " + c.Name
		out = append(out, alerting.APIClient{Name: c.Name, Token: tok, Permissions: c.Permissions})
	}
	return out, nil
}

// reportSilences warns of stored silences outside the limits, e.g. made
// before they existed: they are reported, not rewritten, since ending one
// is a person's audited decision. Matchers are not logged: they may name
// staff.
func reportSilences(ctx context.Context, st store.Silences, limits alerting.SilenceLimits, log *slog.Logger) {
	problems, err := alerting.SilencesOutOfBounds(ctx, st, limits, time.Now())
	if err != nil {
		log.Warn("stored silences not checked against alerting.silences", "err", err)
		return
	}
	for _, p := range problems {
		log.Warn("stored silence outside alerting.silences; expire or narrow it", "silence", p.Silence.ID,
			"created_by", p.Silence.CreatedBy, "ends_at", p.Silence.EndsAt, "problem", p.Problem)
	}
}

func optionalSecret(s config.Secret) (string, error) {
	if s.IsZero() {
		return "", nil
	}
	return s.Resolve()
}

func pseudonymizer(a config.Alerting) (*alerting.Pseudonymizer, error) {
	if a.PseudonymKey.IsZero() {
		return nil, nil
	}
	key, err := a.PseudonymKey.Resolve()
	if err != nil {
		return nil, fmt.Errorf("alerting.pseudonym_key: %w", err)
	}
	return alerting.NewPseudonymizer([]byte(key)), nil
}

// observeFeeds tells the heartbeat which sources a stored batch came from,
// and the newest event time of each.
func observeFeeds(hb *heartbeat.Heartbeat, events []event.Event, arrival time.Time) {
	type source struct{ org, system string }
	newest := map[source]time.Time{}
	for i := range events {
		k := source{events[i].Org, events[i].System}
		if events[i].Time.After(newest[k]) {
			newest[k] = events[i].Time
		}
	}
	for k, t := range newest {
		hb.Observe(k.org, k.system, t, arrival)
	}
}

// routeTree builds the routing tree of a validated configuration (no route:
// nil, meaning the default route of alerting.NewDispatcher).
func routeTree(a config.Alerting) (*alerting.Tree, error) {
	if a.Route == nil {
		return nil, nil
	}
	var conv func(r config.Route) (*alerting.Route, error)
	conv = func(r config.Route) (*alerting.Route, error) {
		ms, err := alerting.ParseMatchers(r.Matchers)
		if err != nil {
			return nil, err
		}
		out := &alerting.Route{Receiver: r.Receiver, Matchers: ms, GroupBy: r.GroupBy, GroupWait: r.GroupWait.D(),
			GroupInterval: r.GroupInterval.D(), RepeatInterval: r.RepeatInterval.D(), Continue: r.Continue}
		for _, c := range r.Routes {
			sub, err := conv(c)
			if err != nil {
				return nil, err
			}
			out.Routes = append(out.Routes, sub)
		}
		return out, nil
	}
	root, err := conv(*a.Route)
	if err != nil {
		return nil, err
	}
	return alerting.NewTree(root)
}
