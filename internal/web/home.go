package web

import (
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/sessionguard/sessionguard/session"
)

// noteKey is where the home page's note is kept in the session's data.
const noteKey = "note"

// maxNoteLen bounds the note, in characters: session data is read on every
// request, so it stays small.
const maxNoteLen = 2000

// renderUser renders a page of the signed-in user v, with the frame that
// shows who they are and the sign-out button.
func (s *Server) renderUser(w http.ResponseWriter, r *http.Request, v *visit, status int, page string, vw *view) {
	vw.User = v.user.Name
	vw.Admin = v.user.IsAdmin()
	s.render(w, r, status, page, vw)
}

type homeView struct {
	IdleTimeout   string    // "30 minutes"
	IdleAt        time.Time // when the session ends if nothing happens from now
	AbsoluteLimit string    // "12-hour"
	AbsoluteAt    time.Time
	AbsoluteLeft  string // "about 11 hours 58 minutes"
	Sessions      []sessionRow
	Note          string
	NoteMax       int
}

// sessionRow is a session as the pages and the JSON list show it.
type sessionRow struct {
	ID         string    `json:"id"`
	User       string    `json:"user"`
	Device     string    `json:"device"`
	IP         string    `json:"ip"`
	Started    time.Time `json:"started"`
	LastActive time.Time `json:"last_active"`
	Current    bool      `json:"current"`
}

func sessionRows(infos []session.Info, current string) []sessionRow {
	rows := make([]sessionRow, len(infos))
	for i, in := range infos {
		rows[i] = sessionRow{
			ID:         in.ID,
			User:       in.UserID,
			Device:     deviceName(in.UserAgent),
			IP:         in.IP,
			Started:    in.CreatedAt,
			LastActive: in.LastActivity,
			Current:    in.ID == current,
		}
	}
	return rows
}

func (s *Server) home(w http.ResponseWriter, r *http.Request, v *visit) {
	infos, err := s.cfg.Sessions.List(r.Context(), v.user.Name, 0)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	info := v.sess.Info()
	now := s.cfg.Clock.Now()
	// This request is activity: the idle clock restarts from now (give or
	// take the touch interval), but never past the absolute deadline.
	idleAt := now.Add(info.Policy.IdleTimeout)
	if abs := info.AbsoluteDeadline(); abs.Before(idleAt) {
		idleAt = abs
	}
	note, _ := v.sess.Get(noteKey)
	var notice string
	if r.URL.Query().Get("done") == "note" {
		notice = "Your note was saved."
	}
	s.renderUser(w, r, v, http.StatusOK, "home", &view{
		Title:  "Home",
		Nav:    "home",
		Notice: notice,
		Content: homeView{
			IdleTimeout:   durationWords(info.Policy.IdleTimeout),
			IdleAt:        idleAt,
			AbsoluteLimit: durationAdjective(info.Policy.AbsoluteTimeout),
			AbsoluteAt:    info.AbsoluteDeadline(),
			AbsoluteLeft:  remainingWords(info.AbsoluteDeadline().Sub(now)),
			Sessions:      sessionRows(infos, info.ID),
			Note:          note,
			NoteMax:       maxNoteLen,
		},
	})
}

// saveNote keeps the home page's note with the session.
func (s *Server) saveNote(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.parseForm(w, r) {
		return
	}
	note := r.PostForm.Get("note")
	if utf8.RuneCountInString(note) > maxNoteLen {
		s.errorPage(w, r, http.StatusRequestEntityTooLarge, "note_too_long",
			"The note is longer than 2000 characters. Shorten it and try again.")
		return
	}
	var err error
	if note == "" {
		err = v.sess.Delete(r.Context(), noteKey)
	} else {
		err = v.sess.Set(r.Context(), noteKey, note)
	}
	if err != nil {
		s.sessionWriteFailed(w, r, err)
		return
	}
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusOK, struct {
			Saved bool `json:"saved"`
		}{true})
		return
	}
	seeOther(w, "/?done=note")
}

type sessionsView struct {
	Sessions    []sessionRow
	Others      bool // whether there are sessions other than this one
	ReauthAfter string
}

// sessionsPage lists the user's own sessions, as a page or as JSON
// {"sessions": [...]}.
func (s *Server) sessionsPage(w http.ResponseWriter, r *http.Request, v *visit) {
	infos, err := s.cfg.Sessions.List(r.Context(), v.user.Name, 0)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	rows := sessionRows(infos, v.sess.ID())
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusOK, struct {
			Sessions []sessionRow `json:"sessions"`
		}{rows})
		return
	}
	var notice string
	switch r.URL.Query().Get("done") {
	case "revoked":
		notice = "The session was ended."
	case "others":
		notice = "Your other sessions were ended."
	}
	s.renderUser(w, r, v, http.StatusOK, "sessions", &view{
		Title:   "Your sessions",
		Nav:     "sessions",
		Notice:  notice,
		Content: sessionsView{Sessions: rows, Others: len(rows) > 1, ReauthAfter: durationWords(s.cfg.ReauthAfter)},
	})
}

// revokeOwn ends one of the user's own sessions (id=...) or all but this
// one (all_others=1). An id that is not one of the user's live sessions is
// 404, whoever it belongs to, so that IDs of others cannot be probed.
func (s *Server) revokeOwn(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.parseForm(w, r) {
		return
	}
	if r.PostForm.Get("all_others") == "1" {
		n, err := s.cfg.Sessions.RevokeUser(r.Context(), v.user.Name, v.sess.ID())
		s.recordRevoked(r, v, v.user.Name, "", n, "all other sessions")
		if err != nil {
			s.notDone(w, r, err, "Your other sessions were not all ended: the session service did not answer.", "")
			return
		}
		s.answerRevoked(w, r, n, "/auth/sessions?done=others")
		return
	}
	id := r.PostForm.Get("id")
	if id == "" {
		s.errorPage(w, r, http.StatusBadRequest, "bad_request", "Choose a session to end.")
		return
	}
	if id == v.sess.ID() {
		s.logout(w, r)
		return
	}
	// Revoke is scoped to the user: another user's session ID ends nothing
	// and answers as a session that does not exist.
	switch err := s.cfg.Sessions.Revoke(r.Context(), v.user.Name, id); {
	case errors.Is(err, session.ErrNotFound):
		s.errorPage(w, r, http.StatusNotFound, "not_found", "That session does not exist or has already ended.")
	case err != nil:
		s.notDone(w, r, err, revokeNotDone, "")
	default:
		s.recordRevoked(r, v, v.user.Name, id, 1, "one session")
		s.answerRevoked(w, r, 1, "/auth/sessions?done=revoked")
	}
}

// answerRevoked tells a JSON client how many sessions ended, and sends a
// browser back to the page it came from.
func (s *Server) answerRevoked(w http.ResponseWriter, r *http.Request, n int, back string) {
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusOK, struct {
			Revoked int `json:"revoked"`
		}{n})
		return
	}
	seeOther(w, back)
}
