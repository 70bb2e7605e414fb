package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/alerting"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/pseudonym"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/version"
	"github.com/dpiawatch/dpiawatch/viewlog"
	"github.com/dpiawatch/dpiawatch/web"
)

// newWebUI builds the web UI, or returns nil when it is not enabled.
// webStoreOf returns the store's side that keeps the web UI's data, the
// view log among it, and which kind of store it is.
func webStoreOf(ctx context.Context, st store.Store) (web.Store, string, error) {
	switch s := st.(type) {
	case *sqlite.Store:
		ws, err := s.Web(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("web: %w", err)
		}
		return ws, "embedded", nil
	case *clickhouse.Store:
		return s.Web(), "clickhouse", nil
	default:
		return nil, "", fmt.Errorf("web: the web UI does not run on a %T store", st)
	}
}

// apiReadRecorder writes the alerting API's reads into the web UI's view
// log, so that the DPO sees every look at data that may name people,
// whichever door it came through.
func apiReadRecorder(ctx context.Context, st store.Store) (func(context.Context, alerting.APIRead) error, error) {
	ws, _, err := webStoreOf(ctx, st)
	if err != nil {
		return nil, err
	}
	kinds := map[string]string{
		alerting.APIReadTriage: viewlog.KindAPITriage, alerting.APIReadSilences: viewlog.KindAPISilences, alerting.APIReadAudit: viewlog.KindAPIAudit,
	}
	return func(ctx context.Context, r alerting.APIRead) error {
		kind, ok := kinds[r.Kind]
		if !ok {
			return fmt.Errorf("unknown API read kind %q", r.Kind)
		}
		return ws.WebRecordView(ctx, viewlog.View{At: r.At, User: r.Client, Role: "api", Kind: kind, Target: r.Target, Rows: r.Rows})
	}, nil
}

func newWebUI(ctx context.Context, cfg *config.Config, st store.Store, inForce func() web.ReferenceIndex, log *slog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	w := cfg.Web
	if !w.Enabled {
		return nil, nil
	}
	ws, kind, err := webStoreOf(ctx, st)
	if err != nil {
		return nil, err
	}
	o := web.Options{
		Store: ws, ExternalURL: w.ExternalURL, SessionTTL: w.SessionTTL.D(), IdleTimeout: w.IdleTimeout.D(),
		RiskChecks: cfg.RiskChecks(), ActivityDays: w.ActivityDays, Logger: log, Registerer: reg,
		RoutineAudit:   web.RoutineAuditOptions{Period: w.RoutineAudit.Period, SampleSize: w.RoutineAudit.SampleSize},
		TrustedProxies: w.TrustedProxyPrefixes(), InForce: inForce,
	}
	if ref, ok := st.(store.ReferenceSnapshots); ok {
		o.Reference = ref
	}
	if src, ok := st.(evidence.Source); ok {
		if o.Evidence, err = webEvidence(cfg, src, kind); err != nil {
			return nil, err
		}
	}
	o.AccountsFile = w.AccountsFile // loaded by web.New, reloaded on change by its Run
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
		o.Pseudonym = pseudonym.New([]byte(key)).Subject
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

// webEvidence lets the DPO export evidence packs from the UI, as
// `dpiawatch evidence export` does (same key, same pseudonyms).
func webEvidence(cfg *config.Config, src evidence.Source, kind string) (*web.EvidenceOptions, error) {
	e := &web.EvidenceOptions{Config: cfg, Source: src, StoreKind: kind, Generator: "dpiawatch " + version.Version}
	if !cfg.Evidence.SigningKey.IsZero() {
		text, err := cfg.Evidence.SigningKey.Resolve()
		if err != nil {
			return nil, fmt.Errorf("evidence.signing_key: %w", err)
		}
		if e.Key, err = evidence.ParsePrivateKey(text); err != nil {
			return nil, fmt.Errorf("evidence.signing_key: %w", err)
		}
	}
	var err error
	if e.Pseudonym, err = EvidencePseudonyms(cfg); err != nil {
		return nil, err
	}
	return e, nil
}

// EvidencePseudonyms returns the evidence export's pseudonym function:
// subjects as alerts and the web UI show them (web.pseudonym_key), accounts
// by the same key in their own domain (pseudonym.Pseudonymizer.Of). Without
// a key it returns nil, and the export withholds ids. The web UI's export
// and `dpiawatch evidence export` share it, so a pack names people alike
// whichever made it.
func EvidencePseudonyms(cfg *config.Config) (func(kind, id string) string, error) {
	if cfg.Web.PseudonymKey.IsZero() {
		return nil, nil
	}
	key, err := cfg.Web.PseudonymKey.Resolve()
	if err != nil {
		return nil, fmt.Errorf("web.pseudonym_key: %w", err)
	}
	return pseudonym.New([]byte(key)).Of, nil
}
