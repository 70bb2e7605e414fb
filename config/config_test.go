package config_test

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/checks"
	_ "github.com/dpiawatch/dpiawatch/checks/install"
	"github.com/dpiawatch/dpiawatch/checks/outofhours"
	"github.com/dpiawatch/dpiawatch/config"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestGolden loads every testdata/*.yaml and compares all its diagnostics,
// with positions, to testdata/*.golden; secrets_*.yaml resolve their secrets.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			// secrets_*.yaml are loaded as check-config and run load them.
			cfg, diags := config.LoadWith(f, config.LoadOptions{ResolveSecrets: strings.HasPrefix(filepath.Base(f), "secrets_")})
			if (cfg == nil) != diags.HasErrors() {
				t.Errorf("config returned = %v with HasErrors = %v", cfg != nil, diags.HasErrors())
			}
			got := diags.String()
			if cfg != nil {
				got += "loaded\n"
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// TestExactMessages pins the messages the brief spells out, field by field.
func TestExactMessages(t *testing.T) {
	tests := []struct {
		file string
		want config.Diagnostic
	}{
		{"testdata/bad_duration.yaml", config.Diagnostic{
			File: "testdata/bad_duration.yaml", Line: 8, Column: 12, Path: "checks.out-of-hours.grace",
			Value: "30 minutes", Message: `"30 minutes" is not a duration (e.g. 30m)`,
		}},
		{"testdata/unknown_risk.yaml", config.Diagnostic{
			File: "testdata/unknown_risk.yaml", Line: 10, Column: 34, Path: "checks.out-of-hours.evidences.st-martins-webster-court[0]",
			Value: "R9", Message: `unknown risk "R9" (DPIA st-martins-webster-court has R1, R2, R3, R4)`,
		}},
		{"testdata/pattern_unknown.yaml", config.Diagnostic{
			File: "testdata/pattern_unknown.yaml", Line: 12, Column: 7, Path: "checks.no-business-need.pattern_evidences.outside-agreement",
			Value: "outside-agreement", Message: `unknown pattern "outside-agreement" of check no-business-need (its patterns: no-relationship, relationship-ended, outside-sharing-agreement)`,
		}},
		{"testdata/pattern_unknown_dpia.yaml", config.Diagnostic{
			File: "testdata/pattern_unknown_dpia.yaml", Line: 13, Column: 9, Path: "checks.no-business-need.pattern_evidences.outside-sharing-agreement.st-martins",
			Value: "st-martins", Message: `unknown DPIA "st-martins" (loaded: st-martins-webster-court, wiltshire-childrens-cms)`,
		}},
		{"testdata/pattern_unknown_risk.yaml", config.Diagnostic{
			File: "testdata/pattern_unknown_risk.yaml", Line: 11, Column: 59, Path: "checks.shared-credential.pattern_evidences.failed-login-burst.st-martins-webster-court[1]",
			Value: "R5", Message: `unknown risk "R5" (DPIA st-martins-webster-court has R1, R2, R3, R4)`,
		}},
		{"testdata/unknown_key.yaml", config.Diagnostic{
			File: "testdata/unknown_key.yaml", Line: 11, Column: 5, Path: "checks.out-of-hours.gace", Value: "gace",
			Message: `unknown key "gace" (known: enabled, evidences, pattern_evidences, severity, grace, working_hours, episode_gap, overrides)`,
		}},
		{"testdata/retention_errors.yaml", config.Diagnostic{
			File: "testdata/retention_errors.yaml", Line: 13, Column: 33, Path: "store.retention.orgs.st-martins.alerts_days", Value: "2",
			Message: "2 days is shorter than the checks' longest lookback (lateness, longest check window and a day for late episode joins): at least 3 days, or 0 to keep",
		}},
		{"testdata/bad_event_time.yaml", config.Diagnostic{
			File: "testdata/bad_event_time.yaml", Line: 7, Column: 14, Path: "ingest.event_time.max_age",
			Value: "0s", Message: "must be longer than 0s: every event time is bounded",
		}},
		{"testdata/bad_trusted_proxy.yaml", config.Diagnostic{
			File: "testdata/bad_trusted_proxy.yaml", Line: 9, Column: 46, Path: "web.trusted_proxies[2]",
			Value: "10.1.0.0/33", Message: `"10.1.0.0/33" is not an IP address or CIDR prefix (e.g. 10.0.0.0/8)`,
		}},
	}
	for _, tc := range tests {
		_, diags := config.Load(tc.file)
		found := false
		for _, d := range diags {
			if d == tc.want {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no diagnostic %#v in\n%s", tc.file, tc.want, diags)
		}
	}
	_, diags := config.Load("testdata/bad_duration.yaml")
	if got, want := diags[0].String(), `testdata/bad_duration.yaml:8:12: checks.out-of-hours.grace: "30 minutes" is not a duration (e.g. 30m)`; got != want {
		t.Errorf("String() = %s\nwant       %s", got, want)
	}
	if err := diags.Err(); err == nil || !strings.Contains(err.Error(), "30 minutes") {
		t.Errorf("Err() = %v", err)
	}
}

// TestPatternEvidences: a pattern's own mapping replaces its check's for
// the DPIAs it names only, [] included, and the risks nothing monitors
// (RiskChecks, the warnings) count a check's own risks only while a pattern
// still takes them.
func TestPatternEvidences(t *testing.T) {
	cfg, diags := config.Load("testdata/pattern_evidences_ok.yaml")
	if cfg == nil {
		t.Fatalf("refused:\n%s", diags)
	}
	nbn, _ := cfg.Checks.Section("no-business-need")
	uls, _ := cfg.Checks.Section("unlocked-session")
	tests := []struct {
		section       config.CheckSection
		pattern, dpia string
		want          []string
	}{
		{nbn, "outside-sharing-agreement", "st-martins-webster-court", []string{}},
		{nbn, "outside-sharing-agreement", "wiltshire-childrens-cms", []string{"R1", "R4"}},
		{nbn, "no-relationship", "st-martins-webster-court", []string{"R2"}},
		{nbn, "relationship-ended", "wiltshire-childrens-cms", []string{"R1"}},
		{uls, "unlocked-gap", "st-martins-webster-court", []string{}},
		{uls, "unlocked-gap", "wiltshire-childrens-cms", []string{"R2"}}, // not named: the check's
		{uls, "device-handover", "wiltshire-childrens-cms", []string{"R3"}},
	}
	for _, tc := range tests {
		got := config.RisksOf(tc.section, tc.pattern, tc.dpia)
		if got == nil || !slices.Equal(got, tc.want) {
			t.Errorf("RisksOf(%s, %s) = %#v, want %#v", tc.pattern, tc.dpia, got, tc.want)
		}
	}
	want := map[string]map[string][]string{
		"st-martins-webster-court": {"R2": {"no-business-need"}},
		"wiltshire-childrens-cms":  {"R1": {"no-business-need"}, "R2": {"unlocked-session"}, "R3": {"unlocked-session"}, "R4": {"no-business-need"}},
	}
	if got := cfg.RiskChecks(); !reflect.DeepEqual(got, want) {
		t.Errorf("RiskChecks() = %v\nwant          %v", got, want)
	}
}

// TestUnknownKeysAllReported: every unknown key, not just the first.
func TestUnknownKeysAllReported(t *testing.T) {
	_, diags := config.Load("testdata/unknown_key.yaml")
	var paths []string
	for _, d := range diags {
		paths = append(paths, d.Path)
	}
	want := "dpias[0].checksum orgs[0].timzone ingest.max_event_size checks.out-of-hours.gace checks.no-business-needs alerts"
	if got := strings.Join(paths, " "); got != want {
		t.Errorf("paths = %s\nwant    %s", got, want)
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	_, diags := config.Load("testdata/literal_secret.yaml")
	if len(diags.Errors()) != 2 {
		t.Errorf("want 2 errors (password, token), got\n%s", diags)
	}
	for _, d := range diags {
		if strings.Contains(d.String()+d.Value, "do-not-leak") {
			t.Errorf("diagnostic reveals a secret: %s (value %q)", d, d.Value)
		}
	}
	s := config.Secret{Env: "DPIAWATCH_TEST_SECRET"}
	t.Setenv("DPIAWATCH_TEST_SECRET", " s3cret\n")
	v, err := s.Resolve()
	if err != nil || v != "s3cret" {
		t.Errorf("Resolve() = %q, %v", v, err)
	}
	out, err := yaml.Marshal(struct{ P config.Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{s.String(), s.GoString(), string(out)} {
		if strings.Contains(r, "s3cret") {
			t.Errorf("secret revealed: %s", r)
		}
	}
	if string(out) != "p:\n    env: DPIAWATCH_TEST_SECRET\n    file: \"\"\n" {
		t.Errorf("MarshalYAML = %q", out)
	}
	if _, err := (config.Secret{Env: "DPIAWATCH_TEST_UNSET_VARIABLE"}).Resolve(); err == nil {
		t.Error("unset variable resolved")
	}
	if _, err := (config.Secret{}).Resolve(); err != config.ErrSecretUnset {
		t.Errorf("zero secret: %v", err)
	}
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := (config.Secret{File: f}).Resolve(); err != nil || v != "from-file" {
		t.Errorf("file secret = %q, %v", v, err)
	}
	var lit config.Secret
	if err := yaml.Unmarshal([]byte("literal"), &lit); err == nil {
		t.Error("yaml.Unmarshal accepted a literal secret")
	}
}

func TestShippedConfig(t *testing.T) {
	cfg, diags := config.Load("../configs/dpiawatch.yaml")
	if diags.HasErrors() {
		t.Fatalf("errors:\n%s", diags)
	}
	var got []string
	for _, d := range diags.Warnings() {
		got = append(got, d.Path+" "+strings.Fields(d.Message)[1]+" "+strings.Fields(d.Message)[4])
	}
	// Only out-of-hours exists so far; each new check should shrink this list.
	want := []string{
		"orgs[0].dpia R3 st-martins-webster-court",
		"orgs[1].dpia R2 wiltshire-childrens-cms",
		"orgs[1].dpia R3 wiltshire-childrens-cms",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(cfg.Registers) != 2 || cfg.Registers["st-martins-webster-court"] == nil || cfg.Registers["wiltshire-childrens-cms"] == nil {
		t.Errorf("registers = %v", cfg.Registers)
	}
	for org, dp := range map[string]string{"st-martins": "st-martins-webster-court", "wiltshire-council": "wiltshire-childrens-cms"} {
		o, ok := cfg.Org(org)
		if !ok || o.DPIA != dp || o.Location == nil || o.Location.String() != "Europe/London" {
			t.Errorf("org %s = %+v", org, o)
		}
	}
	k := cfg.Ingest.Kafka
	if k == nil || k.Brokers[0] != "localhost:9092" || len(k.Topics) != 2 || k.Topics[1].Format != config.FormatFHIR {
		t.Errorf("kafka = %+v", k)
	}
	if org, _ := cfg.Org("wiltshire-council"); org == nil || !slices.Contains(org.OutOfHoursRoles, "emergency-duty-team") {
		t.Errorf("the emergency duty team is not an out-of-hours role: %+v", org)
	}
	ooh := checks.SectionOf[*outofhours.Config](cfg, outofhours.Name)
	if g := ooh.Grace.D(); g != 30*time.Minute || len(ooh.Overrides) != 0 {
		t.Errorf("out-of-hours grace %s with overrides %v, want CONTRACT §4's 30m and none", g, ooh.Overrides)
	}
	abs, _ := filepath.Abs("..")
	if got, _ := filepath.Abs(cfg.Store.Embedded.Path); got != filepath.Join(abs, "data", "dpiawatch.db") {
		t.Errorf("store path = %s", cfg.Store.Embedded.Path)
	}
}

func TestDefaults(t *testing.T) {
	cfg, diags := config.Load("testdata/defaults.yaml")
	if cfg == nil {
		t.Fatalf("errors:\n%s", diags)
	}
	k := cfg.Ingest.Kafka
	o := checks.SectionOf[*outofhours.Config](cfg, outofhours.Name)
	checks := []struct {
		name      string
		got, want any
	}{
		{"timezone", cfg.Orgs[0].Timezone, "Europe/London"},
		{"location", cfg.Orgs[0].Location.String(), "Europe/London"},
		{"max_event_bytes", cfg.Ingest.MaxEventBytes, 65536},
		{"event_time", cfg.Ingest.EventTime, config.EventTime{config.Duration(9600 * time.Hour), config.Duration(5 * time.Minute)}},
		{"client_id", k.ClientID, "dpiawatch"},
		{"group_id", k.GroupID, "dpiawatch"},
		{"dead_letter_topic", k.DeadLetterTopic, "dpiawatch-dead-letter"},
		{"batch", k.Batch, config.Batch{20000, config.Duration(250 * time.Millisecond)}},
		{"queue_batches", k.QueueBatches, 4},
		{"topic format", k.Topics[0].Format, "auto"},
		{"store path", cfg.Store.Embedded.Path, filepath.Join("testdata", "data", "dpiawatch.db")},
		{"synchronous", cfg.Store.Embedded.Synchronous, "full"},
		{"reference dir", cfg.Reference.Dir, filepath.Join("testdata", "reference")},
		{"reload", cfg.Reference.ReloadInterval, config.Duration(time.Minute)},
		{"enabled", o.Enabled, true},
		{"severity", o.Severity, "medium"},
		{"explicit zero grace kept", o.Grace, config.Duration(0)},
		{"episode gap", o.EpisodeGap, config.Duration(time.Hour)},
		{"working hours", o.WorkingHours.String(), "mon,tue,wed,thu,fri 07:30-18:00 england-and-wales"},
		{"override inherits", o.Overrides[0].WorkingHours.String(), "mon,tue,wed,thu,fri 07:30-20:00 england-and-wales"},
		{"dashboard", cfg.Alerting.DashboardURL, "http://127.0.0.1:9464"},
		{"console off kept", cfg.Alerting.Console.Enabled, false},
		{"console format", cfg.Alerting.Console.Format, "text"},
		{"jsonl", cfg.Alerting.JSONL.Path, filepath.Join("testdata", "out", "alerts.jsonl")},
		{"slack token file", cfg.Alerting.Slack.Token.File, filepath.Join("testdata", "slack.token")},
		{"dpia file", cfg.DPIAs[0].File, filepath.Join("configs", "dpia", "st-martins-webster-court.yaml")},
		{"listen", cfg.HTTP.Listen, "127.0.0.1:9464"},
	}
	for _, c := range checks {
		if c.got != c.want && !(c.name == "dpia file" && strings.HasSuffix(c.got.(string), c.want.(string))) {
			t.Errorf("%s = %v; want %v", c.name, c.got, c.want)
		}
	}
}

func TestScalarTypes(t *testing.T) {
	tests := []struct {
		in      string
		into    yaml.Unmarshaler
		want    string
		wantErr string
	}{
		{"1h30m", new(config.Duration), "1h30m0s", ""},
		{"90", new(config.Duration), "", `"90" is not a duration (e.g. 30m)`},
		{"-1m", new(config.Duration), "", `"-1m" is a negative duration`},
		{"[1m]", new(config.Duration), "", "expected a duration (e.g. 30m), found a list"},
		{`"07:05"`, new(config.Clock), "07:05", ""},
		{`"24:00"`, new(config.Clock), "24:00", ""},
		{`"7:05"`, new(config.Clock), "", `"7:05" is not a time of day (HH:MM, e.g. "08:00")`},
		{`"12:60"`, new(config.Clock), "", `"12:60" is not a time of day (HH:MM, e.g. "08:00")`},
		{"Sat", new(config.Weekday), "sat", ""},
		{"saturday", new(config.Weekday), "", `unknown day "saturday" (want mon, tue, wed, thu, fri, sat or sun)`},
	}
	for _, tc := range tests {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(tc.in), &n); err != nil {
			t.Fatal(err)
		}
		err := tc.into.UnmarshalYAML(n.Content[0])
		switch {
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: err = %v; want %s", tc.in, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.in, err)
		default:
			if got := tc.into.(interface{ String() string }).String(); got != tc.want {
				t.Errorf("%s = %s; want %s", tc.in, got, tc.want)
			}
		}
	}
}

func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range append(files, "../configs/dpiawatch.yaml") {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, diags := config.Parse("testdata/fuzz.yaml", b)
		if (cfg == nil) != diags.HasErrors() {
			t.Fatalf("config %v with diagnostics\n%s", cfg != nil, diags)
		}
		for _, d := range diags {
			if d.Message == "" || d.File == "" {
				t.Fatalf("incomplete diagnostic %#v", d)
			}
		}
	})
}

func BenchmarkLoadShipped(b *testing.B) {
	for b.Loop() {
		if cfg, _ := config.Load("../configs/dpiawatch.yaml"); cfg == nil {
			b.Fatal("errors")
		}
	}
}

func TestTrustedProxyPrefixes(t *testing.T) {
	w := config.Web{TrustedProxies: []string{"10.1.2.3/8", "192.0.2.7", "::ffff:192.0.2.8", "2001:db8::/32", "bad"}}
	var got []string
	for _, p := range w.TrustedProxyPrefixes() {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 192.0.2.7/32 192.0.2.8/32 2001:db8::/32"; strings.Join(got, " ") != want {
		t.Errorf("prefixes = %v, want %s", got, want)
	}
}

// TestSystems: the systems the feed metrics label by are those named on
// topics and heartbeats, sorted, once each, without the blank of a topic
// that names none.
func TestSystems(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  config.Config
		want []string
	}{
		{"none", config.Config{}, nil},
		{"topics and heartbeats", config.Config{
			Ingest:   config.Ingest{Kafka: &config.Kafka{Topics: []config.Topic{{Name: "a", System: "mosaic"}, {Name: "b"}, {Name: "c", System: "logmycare"}}}},
			Alerting: config.Alerting{Heartbeats: []config.Heartbeat{{Org: "o", System: "mosaic"}, {Org: "o", System: "carefirst"}}},
		}, []string{"carefirst", "logmycare", "mosaic"}},
	} {
		if got := c.cfg.Systems(); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestShippedMappingDocumented: docs/dpia-mapping.md's table is the
// shipped configuration's risk mapping, pattern by pattern, for both DPIAs
// — every pattern of every check has its row, and each row says what
// configs/dpiawatch.yaml maps ("not covered" for []).
func TestShippedMappingDocumented(t *testing.T) {
	cfg, diags := config.Load("../configs/dpiawatch.yaml")
	if cfg == nil {
		t.Fatalf("load: %s", diags)
	}
	doc, err := os.ReadFile("../docs/dpia-mapping.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][2]string{} // "check/pattern" → St Martins, Wiltshire
	for _, l := range strings.Split(string(doc), "\n") {
		cells := strings.Split(l, "|")
		if len(cells) != 7 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		key := strings.Trim(strings.TrimSpace(cells[1]), "`") + "/" + strings.Trim(strings.TrimSpace(cells[2]), "`")
		if _, dup := rows[key]; dup {
			t.Errorf("%s has two rows", key)
		}
		rows[key] = [2]string{strings.TrimSpace(cells[3]), strings.TrimSpace(cells[4])}
	}
	text := func(risks []string) string {
		if len(risks) == 0 {
			return "not covered"
		}
		return strings.Join(risks, ", ")
	}
	n := 0
	for _, s := range cfg.Checks.Sections() {
		for _, p := range s.Patterns {
			key := s.Name + "/" + p
			row, ok := rows[key]
			if !ok {
				t.Errorf("docs/dpia-mapping.md has no row for %s", key)
				continue
			}
			delete(rows, key)
			n++
			for i, dp := range []string{"st-martins-webster-court", "wiltshire-childrens-cms"} {
				if got := text(config.RisksOf(s.Section, p, dp)); got != row[i] {
					t.Errorf("%s, %s: configs/dpiawatch.yaml maps %s, docs/dpia-mapping.md says %s", key, dp, got, row[i])
				}
			}
		}
	}
	for key := range rows {
		t.Errorf("docs/dpia-mapping.md has a row for %s, which no check raises", key)
	}
	if n < 16 {
		t.Errorf("only %d patterns checked", n)
	}
}
