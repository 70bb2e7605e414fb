package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/alerting"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/web"
)

// newWebUI builds the web UI, or returns nil when it is not enabled.
func newWebUI(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	w := cfg.Web
	if !w.Enabled {
		return nil, nil
	}
	sq, ok := st.(*sqlite.Store)
	if !ok {
		return nil, errors.New("web: the web UI runs on the embedded store only, for now")
	}
	ws, err := sq.Web(ctx)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	o := web.Options{
		Store: ws, ExternalURL: w.ExternalURL, SessionTTL: w.SessionTTL.D(), IdleTimeout: w.IdleTimeout.D(),
		RiskChecks: cfg.RiskChecks(), ActivityDays: w.ActivityDays, Logger: log, Registerer: reg,
	}
	if w.AccountsFile != "" {
		if o.Accounts, err = web.LoadAccounts(w.AccountsFile); err != nil {
			return nil, fmt.Errorf("web.accounts_file: %w", err)
		}
	}
	if oc := w.OIDC; oc != nil {
		secret, err := optionalSecret(oc.ClientSecret)
		if err != nil {
			return nil, fmt.Errorf("web.oidc.client_secret: %w", err)
		}
		o.OIDC = &web.OIDCConfig{Issuer: oc.Issuer, ClientID: oc.ClientID, ClientSecret: secret, Scopes: oc.Scopes,
			RolesClaim: oc.RolesClaim, TeamsClaim: oc.TeamsClaim, OrgsClaim: oc.OrgsClaim, OrgsDefault: oc.OrgsDefault, RoleMap: oc.RoleMap}
	}
	keySecret := w.PseudonymKey
	if keySecret.IsZero() {
		keySecret = cfg.Alerting.PseudonymKey // the UI and Slack show one pseudonym per person
	}
	if !keySecret.IsZero() {
		key, err := keySecret.Resolve()
		if err != nil {
			return nil, fmt.Errorf("web.pseudonym_key: %w", err)
		}
		o.Pseudonym = alerting.NewPseudonymizer([]byte(key)).Subject
	}
	seen := map[string]bool{}
	for _, org := range cfg.Orgs {
		o.Orgs = append(o.Orgs, web.Org{ID: org.ID, Name: org.Name, DPIA: org.DPIA, Location: org.Location})
		if r := cfg.Registers[org.DPIA]; r != nil && !seen[org.DPIA] {
			seen[org.DPIA] = true
			o.DPIAs = append(o.DPIAs, r)
		}
	}
	return web.New(ctx, o)
}
