package alerting

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestWebhookErrorsHideTheURL: an incoming webhook's path is its
// credential, and net/http writes the whole URL into its errors, which the
// delivery loop logs and /readyz shows. Both webhook notifiers must keep
// only the scheme and host.
func TestWebhookErrorsHideTheURL(t *testing.T) {
	// A loopback port nothing listens on: the POST fails at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	const token = "T000/B000/XXXXsecretXXXX"
	secretURL := "http://" + addr + "/services/" + token + "?k=also-secret"

	sw, err := NewSlackWebhook(SlackWebhookOptions{URL: secretURL, DashboardURL: "http://dash.invalid", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := NewWebhook(WebhookOptions{URL: secretURL, Secret: []byte("k"), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, notify := range map[string]func() (bool, error){
		"slack webhook":        func() (bool, error) { return sw.Notify(ctx, testAlert("a-1")) },
		"slack webhook digest": func() (bool, error) { return sw.NotifyDigest(ctx, testAlert("a-1"), testAlert("a-2")) },
		"webhook":              func() (bool, error) { return wh.Notify(ctx, testAlert("a-1")) },
	} {
		_, err := notify()
		if err == nil {
			t.Fatalf("%s: posting to a closed port succeeded", name)
		}
		msg := err.Error()
		if strings.Contains(msg, "secret") || strings.Contains(msg, "/services/") {
			t.Errorf("%s: error carries the URL's credential: %s", name, msg)
		}
		if !strings.Contains(msg, "http://"+addr+"/…") {
			t.Errorf("%s: error does not name the host it tried: %s", name, msg)
		}
	}
}
