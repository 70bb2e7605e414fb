package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
)

// hostile is text a producer or a triager controls, holding everything
// Slack would otherwise format, link or turn into a notification.
const hostile = "*bold* _it_ ~gone~ `code` https://evil.example www.evil.example x@evil.example <!channel> <!here> @here <@U0BOSS> #general :skull: u-\u202e71"

// hostileParts must never reach Slack where it would be parsed.
var hostileParts = []string{"*bold*", "_it_", "~gone~", "`code`", "https://evil", "www.evil", "x@evil", "<!channel>", "<!here>", "@here", "<@U0BOSS>", "#general", ":skull:", "\u202e"}

func hostileAlert() alert.Alert {
	a := testAlert("a-0f3c2e9d1b7a5c4e3f2a1b0c")
	a.ActorID = hostile
	a.Explanation = "Opened by " + hostile
	return a
}

// checkInert fails when a message's blocks carry hostile text in a mrkdwn
// object, or anywhere raw; or its top-level text is parsed as mrkdwn.
func checkInert(t *testing.T, v url.Values) {
	t.Helper()
	texts := []string{v.Get("text")} // every text, decoded from the JSON
	var walk func(x any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			if text, ok := x["text"].(string); ok {
				texts = append(texts, text)
			}
			if x["type"] == "mrkdwn" {
				text, _ := x["text"].(string)
				for _, p := range hostileParts {
					if strings.Contains(text, p) {
						t.Errorf("mrkdwn text %q carries %q", text, p)
					}
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	var blocks any
	if err := json.Unmarshal([]byte(v.Get("blocks")), &blocks); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	walk(blocks)
	all := strings.Join(texts, "\n")
	for _, p := range []string{"\u202e", "<!channel>", "<!here>", "<@U0BOSS>"} {
		if strings.Contains(all, p) {
			t.Errorf("message carries %q raw", p)
		}
	}
	if v.Get("mrkdwn") != "false" || v.Get("parse") != "none" || v.Get("link_names") != "false" {
		t.Errorf("top-level text parsed: mrkdwn=%q parse=%q link_names=%q", v.Get("mrkdwn"), v.Get("parse"), v.Get("link_names"))
	}
}

// TestSlackHostileIDsGolden: ids and explanations reach Slack as plain_text,
// hidden characters shown as [U+202E]; the rendered Block Kit JSON is the
// golden file testdata/slack-hostile.golden (issue 16, item 10).
func TestSlackHostileIDsGolden(t *testing.T) {
	f := newFakeSlack(t)
	s := newTestSlack(t, f, NewPseudonymizer([]byte("test-key")))
	if _, err := s.Notify(t.Context(), hostileAlert()); err != nil {
		t.Fatal(err)
	}
	msgs := f.delivered()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	checkInert(t, msgs[0])
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, []byte(msgs[0].Get("blocks")), "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteString("\n--- fallback text\n" + msgs[0].Get("text") + "\n")
	golden(t, "slack-hostile.golden", pretty.Bytes())
	if !strings.Contains(textsOf(t, msgs[0]), "u-[U+202E]71") {
		t.Error("the actor's right-to-left override is not shown as [U+202E]")
	}
}

// textsOf is a message's blocks as JSON with its strings decoded, so that
// "<" reads as "<" rather than the encoder's \u003c.
func textsOf(t *testing.T, v url.Values) string {
	t.Helper()
	var blocks any
	if err := json.Unmarshal([]byte(v.Get("blocks")), &blocks); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(blocks); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// fakeSlackStore holds one message ref, one alert and its triages.
type fakeSlackStore struct {
	mu      sync.Mutex
	ref     store.MessageRef
	a       alert.Alert
	triages []triage.Decision
}

func (f *fakeSlackStore) MessageRef(_ context.Context, receiver, alertID string) (store.MessageRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ref.AlertID != alertID {
		return store.MessageRef{}, store.ErrNotFound
	}
	return f.ref, nil
}

func (f *fakeSlackStore) PutMessageRef(_ context.Context, ref store.MessageRef) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ref = ref
	return nil
}

func (f *fakeSlackStore) Alert(_ context.Context, id string) (alert.Alert, error) {
	if id != f.a.ID {
		return alert.Alert{}, store.ErrNotFound
	}
	return f.a, nil
}

func (f *fakeSlackStore) Triages(_ context.Context, alertID string) ([]triage.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]triage.Decision(nil), f.triages...), nil
}

// TestSlackTriageNoteIsInert: a triage note, and a triager's name from the
// web UI, reach the thread and the message's triage field as plain_text; a
// Slack triager is still mentioned (issue 16, item 10).
func TestSlackTriageNoteIsInert(t *testing.T) {
	for _, actor := range []string{"web:" + hostile, "slack:U0TRIAGER"} {
		t.Run(actor[:4], func(t *testing.T) {
			f := newThreadSlack(t)
			a := hostileAlert()
			st := &fakeSlackStore{a: a}
			s := newThreadedSlack(t, f, st, RealClock, nil, "C0IG")
			if _, err := s.Notify(t.Context(), a); err != nil {
				t.Fatal(err)
			}
			tr := triage.Decision{AlertID: a.ID, Outcome: triage.ConfirmedMisuse, Actor: actor, Note: "See " + hostile,
				At: time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)}
			st.mu.Lock()
			st.triages = append(st.triages, tr)
			st.mu.Unlock()
			if _, err := s.NotifyTriage(t.Context(), tr); err != nil {
				t.Fatal(err)
			}
			calls := f.calls()
			if len(calls) != 3 { // the message, the reply, the update
				t.Fatalf("%d calls, want 3", len(calls))
			}
			for _, c := range calls {
				checkInert(t, c.Values)
			}
			reply, update := calls[1].Values, calls[2].Values
			if b := textsOf(t, reply); !strings.Contains(b, "Note: See *bold*") || !strings.Contains(b, "u-[U+202E]71") {
				t.Errorf("the reply lacks the note as plain text: %s", b)
			}
			if strings.HasPrefix(actor, "slack:") {
				for _, v := range []url.Values{reply, update} {
					if !strings.Contains(textsOf(t, v), "<@U0TRIAGER>") {
						t.Errorf("a Slack triager is not mentioned: %s", v.Get("blocks"))
					}
				}
			}
		})
	}
}
