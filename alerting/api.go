package alerting

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
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

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/silence"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
)

// SharedTokenClient is the client name of the single shared token
// (alerting.api.token): what it does is recorded as "api:shared".
const SharedTokenClient = "shared"

// APIClient is one API client: its requests carry Token and are recorded
// as made by "api:<Name>".
type APIClient struct {
	Name  string
	Token string
	// Permissions are what the client may do, of APIPermissions; none:
	// all of them.
	Permissions []string
}

// What an API client may do.
const (
	PermissionRead     = "read"     // GET triage, silences and the audit log
	PermissionTriage   = "triage"   // POST a triage decision
	PermissionSilences = "silences" // create, change and expire silences
)

// APIPermissions lists every permission, the default of a client.
var APIPermissions = []string{PermissionRead, PermissionTriage, PermissionSilences}

// APIOptions configures NewAPI.
type APIOptions struct {
	Store store.AlertingStore
	// Clients are the API's clients (alerting.api.clients), with unique
	// names and tokens; none and no Token: /api/v1 answers 404 (the API is
	// off).
	Clients []APIClient
	// Token is the single shared token (alerting.api.token), served as the
	// client SharedTokenClient.
	Token string
	// Silences bounds the silences clients create or change.
	Silences SilenceLimits
	// SlackSigningSecret verifies /slack/interactions; empty: it answers 404.
	SlackSigningSecret string
	// RecordRead writes each read of data that may name people (triage
	// notes, silences' matchers, the audit trail) to the view log before
	// the answer is sent; a read that cannot be recorded is refused (503).
	// Nil: reads are not recorded.
	RecordRead func(ctx context.Context, r APIRead) error
	// OnChange is called after a triage or silence is stored (the
	// pipeline's Wake), so that Slack shows it at once.
	OnChange func()
	Clock    Clock
	Logger   *slog.Logger
}

// API serves triage and silences over HTTP, and Slack's interactivity
// requests (the triage buttons). The daemon mounts it at its root:
//
//	POST   /api/v1/alerts/{id}/triage   {"outcome", "note", "actor"}
//	GET    /api/v1/alerts/{id}/triage
//	GET    /api/v1/silences             ?all=true for expired ones too
//	POST   /api/v1/silences             {"matchers", "starts_at", "ends_at", "comment", "created_by"}
//	GET    /api/v1/silences/{id}
//	PUT    /api/v1/silences/{id}        same body as POST, plus "actor"
//	DELETE /api/v1/silences/{id}        expires it
//	GET    /api/v1/audit?limit=N
//	POST   /slack/interactions
//
// Everything a client does is recorded as "api:<client name>", the client
// whose token the request carries. A person named in the body ("actor",
// "created_by") is kept only as text the client stated, in the note or
// comment, never as who decided.
type API struct {
	o       APIOptions
	clients []apiClient
	mux     *http.ServeMux
}

// apiClient holds a digest of the token: comparing digests takes the same
// time whatever the lengths of the presented and the configured tokens.
type apiClient struct {
	actor string
	sum   [sha256.Size]byte
	may   []string
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
	clients := o.Clients
	if o.Token != "" {
		clients = append(slices.Clip(clients), APIClient{Name: SharedTokenClient, Token: o.Token})
	}
	for _, c := range clients {
		if c.Token != "" {
			may := c.Permissions
			if len(may) == 0 {
				may = APIPermissions
			}
			a.clients = append(a.clients, apiClient{actor: "api:" + c.Name, sum: sha256.Sum256([]byte(c.Token)), may: may})
		}
	}
	a.mux.Handle("POST /api/v1/alerts/{id}/triage", a.auth(PermissionTriage, a.postTriage))
	a.mux.Handle("GET /api/v1/alerts/{id}/triage", a.auth(PermissionRead, a.getTriage))
	a.mux.Handle("GET /api/v1/silences", a.auth(PermissionRead, a.listSilences))
	a.mux.Handle("POST /api/v1/silences", a.auth(PermissionSilences, a.createSilence))
	a.mux.Handle("GET /api/v1/silences/{id}", a.auth(PermissionRead, a.getSilence))
	a.mux.Handle("PUT /api/v1/silences/{id}", a.auth(PermissionSilences, a.updateSilence))
	a.mux.Handle("DELETE /api/v1/silences/{id}", a.auth(PermissionSilences, a.expireSilence))
	a.mux.Handle("GET /api/v1/audit", a.auth(PermissionRead, a.audit))
	a.mux.HandleFunc("POST /slack/interactions", a.slackInteraction)
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

const maxBody = 1 << 20

// clientHandler serves a request of the authenticated client actor
// ("api:<name>").
type clientHandler func(w http.ResponseWriter, r *http.Request, actor string)

// auth serves h to a client holding permission.
func (a *API) auth(permission string, h clientHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(a.clients) == 0 {
			http.NotFound(w, r)
			return
		}
		c := a.client(r)
		if c == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dpiawatch"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		if !slices.Contains(c.may, permission) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("API client %s lacks the permission %q", strings.TrimPrefix(c.actor, "api:"), permission))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h(w, r, c.actor)
	})
}

// client returns the client whose token r carries, or nil. Every client's
// digest is compared, in constant time, whichever matches.
func (a *API) client(r *http.Request) *apiClient {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(got))
	var found *apiClient
	for i := range a.clients {
		if subtle.ConstantTimeCompare(sum[:], a.clients[i].sum[:]) == 1 {
			found = &a.clients[i] // tokens are unique: at most one matches
		}
	}
	return found
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
	// Actor, optional, names the person the client acts for: kept in the
	// note as the client's statement, never as who decided.
	Actor string `json:"actor"`
	Note  string `json:"note"`
}

const (
	maxNote = 2000
	// maxStated bounds a person named in a body ("actor", "created_by").
	maxStated = 200
)

// attributed prefixes text with the person a client says it acts for, as
// the client's statement: the identity recorded stays the client's.
func attributed(text, stated, actor string) string {
	stated = strings.TrimSpace(stated)
	if stated == "" || stated == actor {
		return text
	}
	s := fmt.Sprintf("[on behalf of %q, as stated by %s]", stated, actor)
	if text == "" {
		return s
	}
	return s + " " + text
}

func (a *API) postTriage(w http.ResponseWriter, r *http.Request, actor string) {
	var req TriageRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body is not JSON: "+err.Error())
		return
	}
	if utf8.RuneCountInString(req.Actor) > maxStated {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("actor is longer than %d characters", maxStated))
		return
	}
	if utf8.RuneCountInString(req.Note) > maxNote {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("note is longer than %d characters", maxNote))
		return
	}
	req.Note = attributed(req.Note, req.Actor, actor)
	req.Actor = actor
	t, code, err := a.triage(r.Context(), r.PathValue("id"), req, "api")
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

// triage validates and stores one decision; req.Actor is who decided, and
// the caller has bounded req.Note.
func (a *API) triage(ctx context.Context, id string, req TriageRequest, source string) (triage.Decision, int, error) {
	switch {
	case !slices.Contains(triage.Outcomes, req.Outcome):
		return triage.Decision{}, http.StatusBadRequest, fmt.Errorf("unknown outcome %q (%s)", req.Outcome, strings.Join(triage.Outcomes, ", "))
	case strings.TrimSpace(req.Actor) == "":
		return triage.Decision{}, http.StatusBadRequest, errors.New("actor is required: who decided")
	}
	if _, err := a.o.Store.Alert(ctx, id); errors.Is(err, store.ErrNotFound) {
		return triage.Decision{}, http.StatusNotFound, errors.New("no such alert")
	} else if err != nil {
		return triage.Decision{}, http.StatusInternalServerError, errors.New("store unavailable")
	}
	t, err := a.o.Store.AddTriage(ctx, triage.Decision{AlertID: id, Outcome: req.Outcome, Actor: strings.TrimSpace(req.Actor),
		At: a.o.Clock.Now().UTC(), Note: req.Note, Source: source})
	if err != nil {
		a.o.Logger.Error("triage not stored", "err", err)
		return triage.Decision{}, http.StatusInternalServerError, errors.New("store unavailable")
	}
	a.o.OnChange()
	return t, 0, nil
}

func (a *API) getTriage(w http.ResponseWriter, r *http.Request, actor string) {
	ts, err := a.o.Store.Triages(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	if !a.recordRead(w, r, actor, APIReadTriage, r.PathValue("id"), len(ts)) {
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
	Matchers []string  `json:"matchers"`
	StartsAt time.Time `json:"starts_at"` // zero: now
	EndsAt   time.Time `json:"ends_at"`
	Comment  string    `json:"comment"` // required: why
	// CreatedBy (POST) and Actor (PUT), optional, name the person the
	// client acts for: kept in the comment as the client's statement.
	CreatedBy string `json:"created_by"`
	Actor     string `json:"actor"`
}

// silenceFrom reads a silence that actor creates or changes: 400 when the
// request is malformed, 422 when the silence is outside the limits.
func (a *API) silenceFrom(r *http.Request, actor string) (silence.Silence, int, error) {
	var req SilenceRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return silence.Silence{}, http.StatusBadRequest, fmt.Errorf("body is not JSON: %v", err)
	}
	now := a.o.Clock.Now().UTC()
	if req.StartsAt.IsZero() {
		req.StartsAt = now
	}
	stated := cmpOr(strings.TrimSpace(req.Actor), strings.TrimSpace(req.CreatedBy))
	switch {
	case len(req.Matchers) == 0:
		return silence.Silence{}, http.StatusBadRequest, errors.New("at least one matcher is required")
	case !req.EndsAt.After(req.StartsAt):
		return silence.Silence{}, http.StatusBadRequest, errors.New("ends_at must be after starts_at")
	case utf8.RuneCountInString(stated) > maxStated:
		return silence.Silence{}, http.StatusBadRequest, fmt.Errorf("created_by is longer than %d characters", maxStated)
	case utf8.RuneCountInString(req.Comment) > maxNote:
		return silence.Silence{}, http.StatusBadRequest, fmt.Errorf("comment is longer than %d characters", maxNote)
	}
	if _, err := ParseMatchers(req.Matchers); err != nil {
		return silence.Silence{}, http.StatusBadRequest, err
	}
	s := silence.Silence{Matchers: req.Matchers, StartsAt: req.StartsAt.UTC(), EndsAt: req.EndsAt.UTC(),
		CreatedBy: actor, Comment: req.Comment, UpdatedAt: now}
	if err := a.o.Silences.Check(s, now); err != nil {
		return silence.Silence{}, http.StatusUnprocessableEntity, err
	}
	s.Comment = attributed(s.Comment, stated, actor)
	return s, 0, nil
}

func (a *API) putSilence(ctx context.Context, s silence.Silence, actor, action string) error {
	detail, _ := json.Marshal(s)
	err := a.o.Store.PutSilence(ctx, s, audit.Entry{At: s.UpdatedAt, Actor: actor, Action: action, Object: s.ID, Detail: string(detail)})
	if err == nil {
		a.o.OnChange()
	}
	return err
}

func (a *API) createSilence(w http.ResponseWriter, r *http.Request, actor string) {
	s, code, err := a.silenceFrom(r, actor)
	if err != nil {
		writeError(w, code, err.Error())
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

func (a *API) updateSilence(w http.ResponseWriter, r *http.Request, actor string) {
	old, ok := a.lookupSilence(w, r)
	if !ok {
		return
	}
	s, code, err := a.silenceFrom(r, actor)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	s.ID, s.CreatedBy = old.ID, old.CreatedBy
	if err := a.putSilence(r.Context(), s, actor, "silence.update"); err != nil {
		writeError(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *API) expireSilence(w http.ResponseWriter, r *http.Request, actor string) {
	s, ok := a.lookupSilence(w, r)
	if !ok {
		return
	}
	stated := strings.TrimSpace(r.URL.Query().Get("actor"))
	if utf8.RuneCountInString(stated) > maxStated {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("actor is longer than %d characters", maxStated))
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
	if stated != "" && stated != actor {
		s.Comment = attributed("expired", stated, actor) + "; " + s.Comment
	}
	if err := a.putSilence(r.Context(), s, actor, "silence.expire"); err != nil {
		writeError(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *API) lookupSilence(w http.ResponseWriter, r *http.Request) (silence.Silence, bool) {
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

func (a *API) getSilence(w http.ResponseWriter, r *http.Request, actor string) {
	if s, ok := a.lookupSilence(w, r); ok && a.recordRead(w, r, actor, APIReadSilences, s.ID, 1) {
		writeJSON(w, http.StatusOK, s)
	}
}

func (a *API) listSilences(w http.ResponseWriter, r *http.Request, actor string) {
	since := a.o.Clock.Now()
	if r.URL.Query().Get("all") == "true" {
		since = time.Time{}
	}
	ss, err := a.o.Store.ListSilences(r.Context(), since)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	if !a.recordRead(w, r, actor, APIReadSilences, r.URL.RawQuery, len(ss)) {
		return
	}
	writeJSON(w, http.StatusOK, nonNil(ss))
}

func (a *API) audit(w http.ResponseWriter, r *http.Request, actor string) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	es, err := a.o.Store.AuditLog(r.Context(), limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store unavailable")
		return
	}
	if !a.recordRead(w, r, actor, APIReadAudit, "", len(es)) {
		return
	}
	writeJSON(w, http.StatusOK, nonNil(es))
}

// APIRead is one read over /api/v1 of data that may name people, for the
// view log: Client is "api:<name>", Kind one of the APIRead* kinds, Target
// the alert or silence id (or the list's query), Rows how many entries were
// returned.
type APIRead struct {
	At     time.Time
	Client string
	Kind   string
	Target string
	Rows   int
}

// API read kinds: a fixed set, beside the web UI's view kinds.
const (
	APIReadTriage   = "api-triage"
	APIReadSilences = "api-silences"
	APIReadAudit    = "api-audit"
)

// recordRead writes one read to the view log; false: it could not be
// recorded, and the answer (503) has been sent instead of the data.
func (a *API) recordRead(w http.ResponseWriter, r *http.Request, client, kind, target string, rows int) bool {
	if a.o.RecordRead == nil {
		return true
	}
	if err := a.o.RecordRead(r.Context(), APIRead{At: a.o.Clock.Now().UTC(), Client: client, Kind: kind, Target: target, Rows: rows}); err != nil {
		a.o.Logger.Error("api read not shown: the view log refused it", "kind", kind, "client", client, "err", err)
		writeError(w, http.StatusServiceUnavailable, "view log unavailable; nothing shown")
		return false
	}
	return true
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
