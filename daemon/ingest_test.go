package daemon

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
)

// TestEventTimeWindowsFollowRetention (issue 16, item 10): an org whose
// events retention is shorter than ingest.event_time.max_age accepts no
// event older than that retention — the retention job would delete it after
// its alerts were raised; the others keep max_age.
func TestEventTimeWindowsFollowRetention(t *testing.T) {
	dir := t.TempDir()
	dpias, _ := filepath.Abs("../configs/dpia")
	cfgText := `dpias:
  - file: ` + dpias + `/st-martins-webster-court.yaml
  - file: ` + dpias + `/wiltshire-childrens-cms.yaml
orgs:
  - {id: st-martins, dpia: st-martins-webster-court}
  - {id: wiltshire-council, dpia: wiltshire-childrens-cms}
ingest:
  event_time: {max_age: 8760h, max_ahead: 2m}
store:
  retention:
    orgs:
      st-martins: {events_days: 90}
      wiltshire-council: {events_days: 3650}
checks:
  out-of-hours: {evidences: {st-martins-webster-court: [R2], wiltshire-childrens-cms: [R1]}}
`
	path := filepath.Join(dir, "dpiawatch.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	o, err := IngestOptions(cfg, []string{"127.0.0.1:9092"})
	if err != nil {
		t.Fatal(err)
	}
	want := event.TimeWindows{
		Default: event.TimeWindow{MaxAge: 8760 * time.Hour, MaxAhead: 2 * time.Minute},
		ByOrg: map[string]event.TimeWindow{
			"st-martins": {MaxAge: 90 * 24 * time.Hour, MaxAhead: 2 * time.Minute, AgeBound: "the org's events retention of 90 days"},
		},
	}
	if !reflect.DeepEqual(o.EventTime, want) {
		t.Errorf("event-time windows %+v, want %+v", o.EventTime, want)
	}
}
