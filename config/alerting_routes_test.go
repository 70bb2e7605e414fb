package config

import (
	"path/filepath"
	"testing"
	"time"
)

func TestAlertingRoutesExactMessages(t *testing.T) {
	f := "testdata/alerting_routes.yaml"
	_, diags := Load(f)
	want := []Diagnostic{
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
	cfg, diags := Load("testdata/alerting_routes_ok.yaml")
	if diags.HasErrors() {
		t.Fatalf("errors:\n%s", diags)
	}
	a := cfg.Alerting
	if a.Privacy != PrivacyStandard || a.DigestThreshold != DefaultDigestThreshold || a.Heartbeats[0].Severity != "high" {
		t.Errorf("defaults: privacy %q, digest %d, heartbeat severity %q", a.Privacy, a.DigestThreshold, a.Heartbeats[0].Severity)
	}
	if a.Route.Routes[0].Receiver != "siem" || !a.Route.Routes[0].Continue || a.Heartbeats[0].MaxSilence.D() != 2*time.Hour {
		t.Errorf("route = %+v", a.Route)
	}
	if want, _ := filepath.Abs("testdata/secrets/slack-signing"); a.API.SlackSigningSecret.File != want && a.API.SlackSigningSecret.File != filepath.Join("testdata", "secrets/slack-signing") {
		t.Errorf("signing secret file = %q", a.API.SlackSigningSecret.File)
	}
}
