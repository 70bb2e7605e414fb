package alerting

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/dpiawatch/dpiawatch/store"
)

// APIOptions configures NewAPI.
type APIOptions struct {
	Store store.AlertingStore
	// Token is the bearer token of /api/v1 (from a configured secret);
	// empty: /api/v1 answers 404 (the API is off).
	Token string
	// SlackSigningSecret verifies /slack/interactions; empty: it answers 404.
	SlackSigningSecret string
	// OnChange is called after a triage or silence is stored (the
	// pipeline's Wake), so that Slack shows it at once.
	OnChange func()
	Clock    Clock
	Logger   *slog.Logger
}

// API serves triage and silences over HTTP, and Slack's interactivity
// requests (the triage buttons). The daemon mounts it at its root:
//
//	POST   /api/v1/alerts/{id}/triage   {"outcome", "actor", "note"}
//	GET    /api/v1/alerts/{id}/triage
//	GET    /api/v1/silences             ?all=true for expired ones too
//	POST   /api/v1/silences             {"matchers", "starts_at", "ends_at", "created_by", "comment"}
//	GET    /api/v1/silences/{id}
//	PUT    /api/v1/silences/{id}        same body as POST, plus "actor"
//	DELETE /api/v1/silences/{id}?actor=NAME   expires it
//	GET    /api/v1/audit?limit=N
//	POST   /slack/interactions
type API struct {
	o   APIOptions
	mux *http.ServeMux
}

// NewAPI returns the API handler.
func NewAPI(o APIOptions) *API {
	if o.Clock == nil {
		o.Clock = RealClock
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnChange == nil {
		o.OnChange = func() {}
	}
	a := &API{o: o, mux: http.NewServeMux()}
	a.mux.Handle("POST /api/v1/alerts/{id}/triage", a.auth(a.postTriage))
	a.mux.Handle("GET /api/v1/alerts/{id}/triage", a.auth(a.getTriage))
	a.mux.Handle("GET /api/v1/silences", a.auth(a.listSilences))
	a.mux.Handle("POST /api/v1/silences", a.auth(a.createSilence))
	a.mux.Handle("GET /api/v1/silences/{id}", a.auth(a.getSilence))
	a.mux.Handle("PUT /api/v1/silences/{id}", a.auth(a.updateSilence))
	a.mux.Handle("DELETE /api/v1/silences/{id}", a.auth(a.expireSilence))
	a.mux.Handle("GET /api/v1/audit", a.auth(a.audit))
	a.mux.HandleFunc("POST /slack/interactions", a.slackInteraction)
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

const maxBody = 1 << 20

func (a *API) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.Token == "" {
			http.NotFound(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.o.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dpiawatch"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// TriageRequest is the body of POST /api/v1/alerts/{id}/triage.
type TriageRequest struct {
	Outcome string `json:"outcome"`
	Actor   string `json:"actor"`
	Note    string `json:"note"`
}

const maxNote = 2000

func (a *API) postTriage(w http.ResponseWriter, r *http.Request) {
	var req TriageRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body is not JSON: "+err.Error())
		return
	}
	t, code, err := a.triage(r.Context(), r.PathValue("id"), req, "api")
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

// triage validates and stores one decision.
func (a *API) triage(ctx context.Context, id string, req TriageRequest, source string) (store.Triage, int, error) {
	switch {
	case !slices.Contains(store.TriageOutcomes, req.Outcome):
		return store.Triage{}, http.StatusBadRequest, fmt.Errorf("unknown outcome %q (%s)", req.Outcome, strings.Join(store.TriageOutcomes, ", "))
	case strings.TrimSpace(req.Actor) == "":
		return store.Triage{}, http.StatusBadRequest, errors.New("actor is required: who decided")
	case utf8.RuneCountInString(req.Note) > maxNote:
		return store.Triage{}, http.StatusBadRequest, fmt.Errorf("note is longer than %d characters", maxNote)
	}
	if _, err := a.o.Store.Alert(ctx, id); errors.Is(err, store.ErrNotFound) {
		return store.Triage{}, http.StatusNotFound, errors.New("no such alert")
	} else if err != nil {
		return store.Triage{}, http.StatusInternalServerError, errors.New("store unavailable")
	}
	t, err := a.o.Store.AddTriage(ctx, store.Triage{AlertID: id, Outcome: req.Outcome, Actor: strings.TrimSpace(req.Actor),
		At: a.o.Clock.Now().UTC(), Note: req.Note, Source: source})
	if err != nil {
		a.o.Logger.Error("triage not stored", "err", err)
		return store.Triage{}, http.StatusInternalServerError, errors.New("store unavailable")
	}
	a.o.OnChange()
	return t, 0, nil
}

func (a *API) getTriage(w http.ResponseWriter, r *http.Request) {
	ts, err := a.o.Store.Triages(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	writeJSON(w, http.StatusOK, nonNil(ts))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// SilenceRequest is the body of POST and PUT /api/v1/silences.
type SilenceRequest struct {
	Matchers  []string  `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"` // zero: now
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	Actor     string    `json:"actor"` // PUT: who changes it (default created_by)
}

func (a *API) silenceFrom(r *http.Request) (store.Silence, string, error) {
	var req SilenceRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return store.Silence{}, "", fmt.Errorf("body is not JSON: %v", err)
	}
	now := a.o.Clock.Now().UTC()
	if req.StartsAt.IsZero() {
		req.StartsAt = now
	}
	switch {
	case len(req.Matchers) == 0:
		return store.Silence{}, "", errors.New("at least one matcher is required")
	case strings.TrimSpace(req.CreatedBy) == "":
		return store.Silence{}, "", errors.New("created_by is required")
	case strings.TrimSpace(req.Comment) == "":
		return store.Silence{}, "", errors.New("comment is required: why the silence")
	case !req.EndsAt.After(req.StartsAt):
		return store.Silence{}, "", errors.New("ends_at must be after starts_at")
	}
	if _, err := ParseMatchers(req.Matchers); err != nil {
		return store.Silence{}, "", err
	}
	return store.Silence{Matchers: req.Matchers, StartsAt: req.StartsAt.UTC(), EndsAt: req.EndsAt.UTC(),
		CreatedBy: strings.TrimSpace(req.CreatedBy), Comment: req.Comment, UpdatedAt: now}, cmpOr(strings.TrimSpace(req.Actor), strings.TrimSpace(req.CreatedBy)), nil
}

func (a *API) putSilence(ctx context.Context, s store.Silence, actor, action string) error {
	detail, _ := json.Marshal(s)
	err := a.o.Store.PutSilence(ctx, s, store.AuditEntry{At: s.UpdatedAt, Actor: actor, Action: action, Object: s.ID, Detail: string(detail)})
	if err == nil {
		a.o.OnChange()
	}
	return err
}

func (a *API) createSilence(w http.ResponseWriter, r *http.Request) {
	s, actor, err := a.silenceFrom(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	s.ID = "sil-" + hex.EncodeToString(id[:])
	if err := a.putSilence(r.Context(), s, actor, "silence.create"); err != nil {
		writeError(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	writeJSON(w, http.StatusCreated, s)
}

func (a *API) updateSilence(w http.ResponseWriter, r *http.Request) {
	old, ok := a.lookupSilence(w, r)
	if !ok {
		return
	}
	s, actor, err := a.silenceFrom(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.ID, s.CreatedBy = old.ID, old.CreatedBy
	if err := a.putSilence(r.Context(), s, actor, "silence.update"); err != nil {
		writeError(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *API) expireSilence(w http.ResponseWriter, r *http.Request) {
	s, ok := a.lookupSilence(w, r)
	if !ok {
		return
	}
	actor := strings.TrimSpace(r.URL.Query().Get("actor"))
	if actor == "" {
		writeError(w, http.StatusBadRequest, "actor is required: who expires it")
		return
	}
	now := a.o.Clock.Now().UTC()
	if s.EndsAt.After(now) {
		s.EndsAt = now
		if s.StartsAt.After(now) {
			s.StartsAt = now
		}
	}
	s.UpdatedAt = now
	if err := a.putSilence(r.Context(), s, actor, "silence.expire"); err != nil {
		writeError(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *API) lookupSilence(w http.ResponseWriter, r *http.Request) (store.Silence, bool) {
	s, err := a.o.Store.Silence(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such silence")
		return s, false
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store unavailable")
		return s, false
	}
	return s, true
}

func (a *API) getSilence(w http.ResponseWriter, r *http.Request) {
	if s, ok := a.lookupSilence(w, r); ok {
		writeJSON(w, http.StatusOK, s)
	}
}

func (a *API) listSilences(w http.ResponseWriter, r *http.Request) {
	since := a.o.Clock.Now()
	if r.URL.Query().Get("all") == "true" {
		since = time.Time{}
	}
	ss, err := a.o.Store.ListSilences(r.Context(), since)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	writeJSON(w, http.StatusOK, nonNil(ss))
}

func (a *API) audit(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	es, err := a.o.Store.AuditLog(r.Context(), limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	writeJSON(w, http.StatusOK, nonNil(es))
}

// slackMaxAge is how old an interaction may be (Slack's own advice).
const slackMaxAge = 5 * time.Minute

// slackInteraction handles a triage button: the request must carry a valid
// X-Slack-Signature over its body, made with the signing secret, and a
// timestamp within five minutes (a replayed request is refused).
func (a *API) slackInteraction(w http.ResponseWriter, r *http.Request) {
	if a.o.SlackSigningSecret == "" {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "unreadable body")
		return
	}
	sec, err := strconv.ParseInt(r.Header.Get("X-Slack-Request-Timestamp"), 10, 64)
	if err != nil || a.o.Clock.Now().Sub(time.Unix(sec, 0)).Abs() > slackMaxAge {
		a.o.Logger.Warn("slack interaction refused", "reason", "stale or missing timestamp")
		writeError(w, http.StatusUnauthorized, "stale or missing timestamp")
		return
	}
	v, err := slack.NewSecretsVerifier(r.Header, a.o.SlackSigningSecret)
	if err == nil {
		_, _ = v.Write(body)
		err = v.Ensure()
	}
	if err != nil {
		a.o.Logger.Warn("slack interaction refused", "reason", "bad signature")
		writeError(w, http.StatusUnauthorized, "bad signature")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad form")
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		writeError(w, http.StatusBadRequest, "bad payload")
		return
	}
	if cb.Type != slack.InteractionTypeBlockActions {
		w.WriteHeader(http.StatusOK)
		return
	}
	for _, act := range cb.ActionCallback.BlockActions {
		i := slices.IndexFunc(triageActions, func(t struct{ action, outcome, label string }) bool { return t.action == act.ActionID })
		if i < 0 {
			continue // e.g. the dashboard link button
		}
		if _, code, err := a.triage(r.Context(), act.Value, TriageRequest{Outcome: triageActions[i].outcome, Actor: "slack:" + cb.User.ID}, "slack"); err != nil {
			writeError(w, code, err.Error())
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}
