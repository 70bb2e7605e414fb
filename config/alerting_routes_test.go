package config_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
)

func TestAlertingRoutesExactMessages(t *testing.T) {
	f := "testdata/alerting_routes.yaml"
	_, diags := config.Load(f)
	want := []config.Diagnostic{
		{File: f, Line: 18, Column: 21, Path: "alerting.route.group_by[1]", Value: "subject",
			Message: `unknown label "subject" (org, check, pattern, severity, dpia, risk)`},
		{File: f, Line: 22, Column: 19, Path: "alerting.route.routes[0].receiver", Value: "pager",
			Message: `unknown receiver "pager" (define it under alerting.receivers, or use console, jsonl, slack)`},
		{File: f, Line: 25, Column: 69, Path: "alerting.heartbeats[0].risks[0]", Value: "R9",
			Message: `unknown risk "R9" (DPIA st-martins-webster-court has R1, R2, R3, R4)`},
	}
	for _, w := range want {
		found := false
		for _, d := range diags {
			found = found || d == w
		}
		if !found {
			t.Errorf("no diagnostic %#v in\n%s", w, diags)
		}
	}
}

func TestAlertingRoutesLoadWithDefaults(t *testing.T) {
	cfg, diags := config.Load("testdata/alerting_routes_ok.yaml")
	if diags.HasErrors() {
		t.Fatalf("errors:\n%s", diags)
	}
	a := cfg.Alerting
	if a.Privacy != config.PrivacyStandard || a.DigestThreshold != config.DefaultDigestThreshold || a.Heartbeats[0].Severity != "high" {
		t.Errorf("defaults: privacy %q, digest %d, heartbeat severity %q", a.Privacy, a.DigestThreshold, a.Heartbeats[0].Severity)
	}
	if a.Route.Routes[0].Receiver != "siem" || !a.Route.Routes[0].Continue || a.Heartbeats[0].MaxSilence.D() != 2*time.Hour {
		t.Errorf("route = %+v", a.Route)
	}
	if want, _ := filepath.Abs("testdata/secrets/slack-signing"); a.API.SlackSigningSecret.File != want && a.API.SlackSigningSecret.File != filepath.Join("testdata", "secrets/slack-signing") {
		t.Errorf("signing secret file = %q", a.API.SlackSigningSecret.File)
	}
}

// TestAPIWithoutRoute: an API token where the API would not be served is an
// error at the key, not silently ignored (issue 16, item 11).
func TestAPIWithoutRoute(t *testing.T) {
	f := "testdata/api_without_route.yaml"
	cfg, diags := config.Load(f)
	want := config.Diagnostic{File: f, Line: 10, Column: 12, Path: "alerting.api.token",
		Message: "the triage and silences API is served only with alerting.route, which applies silences and triage; add a route (e.g. route: {receiver: console}) or remove alerting.api"}
	if cfg != nil || len(diags.Errors()) != 1 || diags.Errors()[0] != want {
		t.Errorf("loaded %v, errors:\n%s\nwant %s", cfg != nil, diags.Errors(), want)
	}
}

// TestAPIClientsAndSilences: named clients and the silence bounds load with
// their defaults.
func TestAPIClientsAndSilences(t *testing.T) {
	cfg, diags := config.Parse("testdata/x.yaml", []byte(`dpias:
  - file: ../../configs/dpia/st-martins-webster-court.yaml
orgs:
  - {id: st-martins, dpia: st-martins-webster-court}
checks:
  out-of-hours:
    evidences: {st-martins-webster-court: [R1, R2, R3, R4]}
alerting:
  api:
    clients:
      - {name: soc-bot, token: {file: secrets/soc-bot}}
      - {name: siem, token: {env: SIEM_TOKEN}}
  route: {receiver: console}
`))
	if diags.HasErrors() {
		t.Fatalf("errors:\n%s", diags)
	}
	a := cfg.Alerting
	if len(a.API.Clients) != 2 || a.API.Clients[1].Name != "siem" || a.API.Clients[0].Token.File != filepath.Join("testdata", "secrets/soc-bot") {
		t.Errorf("clients = %+v", a.API.Clients)
	}
	if a.Silences.MaxDuration.D() != 30*24*time.Hour || a.Silences.AllowMatchAll {
		t.Errorf("silences = %+v", a.Silences)
	}
}
