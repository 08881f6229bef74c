package drafts

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// bodySlack is what a POST body may hold beyond the fields' own limit: the
// path, the form identifier and the JSON around them.
const bodySlack = 8 << 10

// draftJSON is a draft as Handler sends and receives it. Marks come in
// only: they are not stored.
type draftJSON struct {
	Form      string            `json:"form"`
	Path      string            `json:"path"`
	Fields    map[string]string `json:"fields"`
	Marks     map[string]string `json:"marks,omitempty"`
	SavedAt   *time.Time        `json:"saved_at,omitempty"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
}

func toJSON(d Draft) draftJSON {
	return draftJSON{Form: d.Form, Path: d.Path, Fields: d.Fields, SavedAt: &d.SavedAt, ExpiresAt: &d.ExpiresAt}
}

// errorJSON is the body of every error answer: a stable code for programs
// and a sentence for people.
type errorJSON struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// Handler returns the JSON endpoint of store, meant to be mounted at
// /auth/drafts (any path works: it ignores its own). user returns the
// signed-in user of a request, or false when there is none; nil means the
// user of the request's session (session.FromContext: the handler must then
// run inside the session Manager's Handler).
//
//   - GET ?path=P answers 200 {"drafts":[{"form","path","fields","saved_at","expires_at"}]}
//     with the user's live drafts of page P (an empty list when none).
//   - POST with a JSON body {"form","path","fields":{name:value},"marks":{name:marks}}
//     saves a draft (Content-Type application/json) and answers 200 with it
//     as stored: without the fields that hold secrets, which the server
//     drops by their names and marks (see Sensitive and Draft.Marks)
//     whatever the client filtered. "marks" is optional.
//   - DELETE ?path=P&form=F deletes one and answers 204, also when there was
//     none.
//
// Errors are JSON {"error","message"}: 401 without a signed-in user, 400 for
// a malformed request, 413 for a draft over the store's MaxBytes, 415 for a
// body that is not JSON, 429 when the user has too many drafts, 405 for other
// methods, 503 when the session store failed, 500 (logged, never detailed)
// when the database failed. Every request is passive (session.Passive): a
// background save never keeps a session alive, and no answer is cached.
func Handler(store *Store, user func(*http.Request) (string, bool)) http.Handler {
	if user == nil {
		user = sessionUser
	}
	h := &handler{store: store, user: user}
	return session.Passive(h)
}

func sessionUser(r *http.Request) (string, bool) {
	s := session.FromContext(r.Context())
	if s == nil {
		return "", false
	}
	return s.UserID(), true
}

type handler struct {
	store *Store
	user  func(*http.Request) (string, bool)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use GET, POST or DELETE.")
		return
	}
	user, ok := h.user(r)
	if !ok {
		if session.StoreError(r.Context()) != nil {
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusServiceUnavailable, "unavailable", "The session could not be checked. Try again in a moment.")
			return
		}
		writeError(w, http.StatusUnauthorized, "unauthenticated", "Sign in to save or restore drafts.")
		return
	}
	switch r.Method {
	case http.MethodPost:
		h.save(w, r, user)
	case http.MethodDelete:
		h.delete(w, r, user)
	default:
		h.load(w, r, user)
	}
}

func (h *handler) load(w http.ResponseWriter, r *http.Request, user string) {
	path := r.URL.Query().Get("path")
	list, err := h.store.Load(r.Context(), user, path)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := struct {
		Drafts []draftJSON `json:"drafts"`
	}{Drafts: make([]draftJSON, 0, len(list))}
	for _, d := range list {
		out.Drafts = append(out.Drafts, toJSON(d))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) save(w http.ResponseWriter, r *http.Request, user string) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the draft as JSON (Content-Type: application/json).")
		return
	}
	limit := int64(h.store.MaxBytes()) + bodySlack
	if r.ContentLength > limit {
		h.tooLarge(w)
		return
	}
	var in draftJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	err := dec.Decode(&in)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("trailing data after the JSON object")
	}
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.tooLarge(w)
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request",
			`The body is not a JSON object {"form": "...", "path": "...", "fields": {"name": "value"}} with text values.`)
		return
	}
	d, err := h.store.Save(r.Context(), Draft{User: user, Path: in.Path, Form: in.Form, Fields: in.Fields, Marks: in.Marks})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(d))
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, user string) {
	q := r.URL.Query()
	if err := h.store.Delete(r.Context(), user, q.Get("path"), q.Get("form")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) tooLarge(w http.ResponseWriter) {
	writeError(w, http.StatusRequestEntityTooLarge, "too_large",
		"The draft is larger than the "+strconv.Itoa(h.store.MaxBytes()>>10)+" KiB the server keeps.")
}

// fail answers a Store error: the client's mistakes with what to fix, the
// database's failures with a 500 that says nothing of them.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, "bad_request", strings.TrimPrefix(err.Error(), "drafts: "))
	case errors.Is(err, ErrTooLarge):
		h.tooLarge(w)
	case errors.Is(err, ErrTooMany):
		writeError(w, http.StatusTooManyRequests, "too_many_drafts",
			"You have too many unsaved drafts kept on the server; they expire a day after they were saved.")
	default:
		h.store.opts.Logger.Error("drafts: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "The draft could not be kept. Try again later.")
	}
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorJSON{Error: code, Message: message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only strings, maps of strings and times are encoded here.
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"The answer could not be encoded."}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
