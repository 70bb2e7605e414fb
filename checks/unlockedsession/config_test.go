package unlockedsession_test

import (
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/checks"
	_ "github.com/dpiawatch/dpiawatch/checks/install"
	"github.com/dpiawatch/dpiawatch/checks/unlockedsession"
	"github.com/dpiawatch/dpiawatch/config"
)

func TestUnlockedSessionConfig(t *testing.T) {
	cfg, diags := config.Load("../../config/testdata/unlocked_session_ok.yaml")
	if cfg == nil {
		t.Fatalf("load: %s", diags)
	}
	u := checks.SectionOf[*unlockedsession.Config](cfg, unlockedsession.Name)
	if !u.Enabled || u.Severity != "medium" || u.Limit.D() != 20*time.Minute || u.OpenFor.D() != 30*time.Minute ||
		u.NewSessionAfter.D() != 12*time.Hour || u.EpisodeGap.D() != time.Hour {
		t.Errorf("defaults: %+v", u)
	}
	if len(u.Overrides) != 5 || u.Overrides[1].DeviceKind != "shared-tablet" || u.Overrides[1].Limit.D() != 12*time.Minute ||
		*u.Overrides[2].DeviceHandover || !*u.Overrides[3].Exempt || *u.Overrides[4].UnlockedGap {
		t.Errorf("overrides: %+v", u.Overrides)
	}
	shipped, diags := config.Load("../../configs/dpiawatch.yaml")
	if shipped == nil {
		t.Fatalf("load shipped: %s", diags)
	}
	s := checks.SectionOf[*unlockedsession.Config](shipped, unlockedsession.Name)
	if !s.Enabled || s.Limit.D() != 30*time.Minute || len(s.Overrides) != 1 || s.Overrides[0].Limit.D() != 10*time.Minute ||
		s.Evidences["st-martins-webster-court"][0] != "R1" {
		t.Errorf("shipped: %+v", s)
	}
}
