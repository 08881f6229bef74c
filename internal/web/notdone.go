package web

import (
	"net/http"

	"github.com/sessionguard/sessionguard/session"
)

// notDone answers 503 when something a person asked for (a sign-out, a
// revocation, a password change, a disabled account) did not take effect,
// or only in part, because a store failed: never a success for what did
// not happen. what tells them, in a sentence or two, what did and did not
// happen; the answer adds that they should try again, and the page the
// reference to quote. retry, when not empty, is the path a "Try again"
// button posts to. JSON clients get {"error": "unavailable", "message"}.
func (s *Server) notDone(w http.ResponseWriter, r *http.Request, err error, what, retry string) {
	ref := infoFrom(r.Context()).id
	s.cfg.Logger.Error("an action did not take effect: a store failed", "ref", ref, "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "5")
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusServiceUnavailable, struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}{"unavailable", what + " Try again in a moment."})
		return
	}
	v := &view{
		Title: "Not done",
		Content: errorView{
			Heading: "Not done",
			Message: what + " Try again in a moment (reference " + ref + ").",
			Retry:   retry,
		},
	}
	// A person still signed in keeps the frame, and its sign-out button.
	if sess := session.FromContext(r.Context()); sess.SignedIn() {
		v.User = sess.UserID()
	}
	s.render(w, r, http.StatusServiceUnavailable, "error", v)
}

// The sentences notDone says after a store failed.
const (
	signOutNotDone = "You are still signed in: the sign-out did not go through, because the session service did not answer."
	revokeNotDone  = "The session was not ended: the session service did not answer."
)
