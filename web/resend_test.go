package web_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/store"
)

// TestAlertPageResend (issue 16, item 14): an alert a receiver refused is
// shown on its page with the reason; the IG team can re-send it (POST with
// the CSRF token, audited), which puts it back in that receiver's queue
// and wakes delivery; other roles see the failure but cannot re-send.
func TestAlertPageResend(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ctx := t.Context()
	a, err := f.sq.Alert(ctx, alertA)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sq.MarkFailed(ctx, store.DeliveryFailure{Receiver: "ig-slack", AlertID: alertA, Version: a.Version, Reason: "msg_too_long", At: f.now.Now()}); err != nil {
		t.Fatal(err)
	}
	resendURL := f.srv.URL + "/alerts/" + alertA + "/resend"

	mgr, mgrCSRF := f.login(t, "mgr-a")
	_, body := get(t, mgr, f.srv.URL+"/alerts/"+alertA)
	if !strings.Contains(body, "Not delivered") || !strings.Contains(body, "msg_too_long") {
		t.Errorf("manager's alert page does not show the failure")
	}
	if strings.Contains(body, "/resend") {
		t.Errorf("manager is offered Re-send")
	}
	if resp, _ := post(t, mgr, resendURL, url.Values{"csrf": {mgrCSRF}, "receiver": {"ig-slack"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("manager re-send: %s, want 403", resp.Status)
	}

	ig, csrf := f.login(t, "ig")
	_, body = get(t, ig, f.srv.URL+"/alerts/"+alertA)
	for _, want := range []string{"Not delivered", "ig-slack", "<code>msg_too_long</code>", `action="/alerts/` + alertA + `/resend"`, `name="receiver" value="ig-slack"`, "Re-send"} {
		if !strings.Contains(body, want) {
			t.Errorf("IG alert page lacks %q", want)
		}
	}
	if resp, _ := post(t, ig, resendURL, url.Values{"csrf": {"forged"}, "receiver": {"ig-slack"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("re-send with a bad CSRF token: %s, want 403", resp.Status)
	}
	if resp, _ := post(t, ig, resendURL, url.Values{"csrf": {csrf}, "receiver": {"other"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("re-send to a receiver without a failure: %s, want 400", resp.Status)
	}
	if p, _ := f.sq.Pending(ctx, "ig-slack", 0); containsAlert(p, alertA) {
		t.Fatal("the failed alert is pending before the re-send")
	}
	wakes := f.wakes.Load()
	resp, _ := post(t, ig, resendURL, url.Values{"csrf": {csrf}, "receiver": {"ig-slack"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/alerts/"+alertA {
		t.Fatalf("re-send: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	if p, _ := f.sq.Pending(ctx, "ig-slack", 0); !containsAlert(p, alertA) {
		t.Error("the re-sent alert is not pending for ig-slack")
	}
	if f.wakes.Load() != wakes+1 {
		t.Error("delivery was not woken")
	}
	log, err := f.sq.AuditLog(ctx, 1)
	if err != nil || len(log) != 1 || log[0].Action != "alert.resend" || log[0].Actor != "ig" || log[0].Object != alertA || !strings.Contains(log[0].Detail, `"receiver":"ig-slack"`) {
		t.Errorf("audit: %+v, %v", log, err)
	}
	_, body = get(t, ig, f.srv.URL+"/alerts/"+alertA)
	if strings.Contains(body, "Not delivered") {
		t.Error("the failure is still shown after the re-send")
	}
}

func containsAlert(as []alert.Alert, id string) bool {
	return slices.ContainsFunc(as, func(a alert.Alert) bool { return a.ID == id })
}
