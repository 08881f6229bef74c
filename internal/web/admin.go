package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/session"
)

// maxAdminSessions bounds the sessions the admin page lists.
const maxAdminSessions = 500

// admin wraps a handler of the admin area: administrators only (403 for
// others), and only with a recent authentication (see sensitive).
func (s *Server) admin(h func(http.ResponseWriter, *http.Request, *visit)) http.Handler {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request, v *visit) {
		if !v.user.IsAdmin() {
			s.cfg.Logger.Warn("refused a non-administrator the admin area", "user", v.user.Name, "path", r.URL.Path)
			if wantsJSON(r) {
				s.writeJSON(w, r, http.StatusForbidden, jsonError{Error: "forbidden"})
				return
			}
			s.renderUser(w, r, v, http.StatusForbidden, "error", &view{
				Title:   "Not allowed",
				Content: errorView{Heading: "Not allowed", Message: "This page is for administrators."},
			})
			return
		}
		if !s.fresh(v) {
			s.reauthRequired(w, r)
			return
		}
		h(w, r, v)
	})
}

type adminUserRow struct {
	account.User
	Sessions int
	Self     bool
}

type adminView struct {
	Users             []adminUserRow
	Sessions          []sessionRow
	SessionsTruncated bool
	MinLength         int
}

var adminNotices = map[string]string{
	"created":  "The user was added.",
	"disabled": "The user was disabled and their sessions ended.",
	"enabled":  "The user was enabled.",
	"password": "The password was reset and the user's sessions ended.",
	"revoked":  "The session was ended.",
}

func (s *Server) adminPage(w http.ResponseWriter, r *http.Request, v *visit) {
	s.renderAdmin(w, r, v, http.StatusOK, adminNotices[r.URL.Query().Get("done")], "")
}

func (s *Server) renderAdmin(w http.ResponseWriter, r *http.Request, v *visit, status int, notice, problem string) {
	users, err := s.cfg.Accounts.List(r.Context())
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	infos, err := s.cfg.Sessions.List(r.Context(), "", maxAdminSessions+1)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	truncated := len(infos) > maxAdminSessions
	if truncated {
		infos = infos[:maxAdminSessions]
	}
	perUser := make(map[string]int)
	for _, in := range infos {
		perUser[in.UserID]++
	}
	rows := make([]adminUserRow, len(users))
	for i, u := range users {
		rows[i] = adminUserRow{User: u, Sessions: perUser[u.Name], Self: u.Name == v.user.Name}
	}
	sessions := sessionRows(infos, v.sess.ID())
	if wantsJSON(r) && status == http.StatusOK {
		type userJSON struct {
			Name     string `json:"name"`
			Role     string `json:"role"`
			Disabled bool   `json:"disabled"`
			Sessions int    `json:"sessions"`
		}
		out := struct {
			Users    []userJSON   `json:"users"`
			Sessions []sessionRow `json:"sessions"`
		}{Users: make([]userJSON, len(rows)), Sessions: sessions}
		for i, u := range rows {
			out.Users[i] = userJSON{u.Name, string(u.Role), u.Disabled, u.Sessions}
		}
		s.writeJSON(w, r, status, out)
		return
	}
	s.renderUser(w, r, v, status, "admin", &view{
		Title:   "Administration",
		Nav:     "admin",
		Notice:  notice,
		Error:   problem,
		Content: adminView{Users: rows, Sessions: sessions, SessionsTruncated: truncated, MinLength: account.MinPasswordLength},
	})
}

// adminRefused answers an admin action refused for what was sent: the
// admin page again with the problem (browsers), or {"error", "message"}.
func (s *Server) adminRefused(w http.ResponseWriter, r *http.Request, v *visit, status int, code, msg string) {
	if wantsJSON(r) {
		s.writeJSON(w, r, status, struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}{code, msg})
		return
	}
	s.renderAdmin(w, r, v, status, "", msg)
}

// adminDone answers a successful admin action.
func (s *Server) adminDone(w http.ResponseWriter, r *http.Request, done string) {
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusOK, struct {
			Done string `json:"done"`
		}{done})
		return
	}
	seeOther(w, "/admin?done="+url.QueryEscape(done))
}

// adminStoreError answers an account error of an admin action.
func (s *Server) adminStoreError(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	switch msg, ok := inputProblem(err); {
	case errors.Is(err, account.ErrNotFound):
		s.adminRefused(w, r, v, http.StatusNotFound, "not_found", "There is no such user.")
	case ok && (errors.Is(err, account.ErrExists) || errors.Is(err, account.ErrLastAdmin)):
		s.adminRefused(w, r, v, http.StatusConflict, "conflict", msg)
	case ok:
		s.adminRefused(w, r, v, http.StatusBadRequest, "invalid", msg)
	default:
		s.accountFailed(w, r, err)
	}
}

func (s *Server) addUser(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.parseForm(w, r) {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("username"))
	role := account.Role(r.PostForm.Get("role"))
	if role == "" {
		role = account.RoleUser
	}
	if err := s.cfg.Accounts.Create(r.Context(), name, r.PostForm.Get("password"), role); err != nil {
		s.adminStoreError(w, r, v, err)
		return
	}
	created, _ := account.NormalizeName(name)
	s.record(r.Context(), audit.Entry{Event: audit.UserCreated, User: created, Session: v.sess.ID(),
		IP: s.cfg.ClientIP(r), Detail: "by " + v.user.Name + ", role " + string(role)})
	s.adminDone(w, r, "created")
}

// target returns the user an admin action is about, refusing the
// administrator's own account (their own password changes on the account
// page, and disabling themselves would lock them out).
func (s *Server) target(w http.ResponseWriter, r *http.Request, v *visit) (string, bool) {
	if !s.parseForm(w, r) {
		return "", false
	}
	name, err := account.NormalizeName(r.PostForm.Get("username"))
	if err != nil {
		s.adminRefused(w, r, v, http.StatusNotFound, "not_found", "There is no such user.")
		return "", false
	}
	if name == v.user.Name {
		s.adminRefused(w, r, v, http.StatusBadRequest, "self", "Use the Account page to change your own account.")
		return "", false
	}
	return name, true
}

// disableUser disables an account and ends all its sessions (ASVS 7.4.2).
func (s *Server) disableUser(w http.ResponseWriter, r *http.Request, v *visit) {
	name, ok := s.target(w, r, v)
	if !ok {
		return
	}
	if err := s.cfg.Accounts.SetDisabled(r.Context(), name, true); err != nil {
		s.adminStoreError(w, r, v, err)
		return
	}
	s.record(r.Context(), audit.Entry{Event: audit.UserDisabled, User: name, Session: v.sess.ID(),
		IP: s.cfg.ClientIP(r), Detail: "by " + v.user.Name})
	n, err := s.cfg.Sessions.RevokeUser(r.Context(), name, "")
	s.recordRevoked(r, v, name, "", n, "account disabled")
	if err != nil {
		// The account is disabled, so its sessions are refused on their
		// next request anyway (signedIn checks), but not ended: say so.
		// Disabling again ends what is left.
		s.notDone(w, r, err, "The user was disabled, but their sessions could not all be ended: the session service did not answer. Disable the user again to end them.", "")
		return
	}
	s.adminDone(w, r, "disabled")
}

func (s *Server) enableUser(w http.ResponseWriter, r *http.Request, v *visit) {
	name, ok := s.target(w, r, v)
	if !ok {
		return
	}
	if err := s.cfg.Accounts.SetDisabled(r.Context(), name, false); err != nil {
		s.adminStoreError(w, r, v, err)
		return
	}
	s.record(r.Context(), audit.Entry{Event: audit.UserEnabled, User: name, Session: v.sess.ID(),
		IP: s.cfg.ClientIP(r), Detail: "by " + v.user.Name})
	s.adminDone(w, r, "enabled")
}

// resetPassword sets a user's password and ends all their sessions: whoever
// used the old password is out.
func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request, v *visit) {
	name, ok := s.target(w, r, v)
	if !ok {
		return
	}
	if err := s.cfg.Accounts.SetPassword(r.Context(), name, r.PostForm.Get("password")); err != nil {
		s.adminStoreError(w, r, v, err)
		return
	}
	s.record(r.Context(), audit.Entry{Event: audit.PasswordChanged, User: name, Session: v.sess.ID(),
		IP: s.cfg.ClientIP(r), Detail: "reset by " + v.user.Name})
	n, err := s.cfg.Sessions.RevokeUser(r.Context(), name, "")
	s.recordRevoked(r, v, name, "", n, "password reset")
	if err != nil {
		s.notDone(w, r, err, "The password was reset, but the user's sessions could not all be ended: the session service did not answer. Reset the password again to end them.", "")
		return
	}
	s.adminDone(w, r, "password")
}

// revokeAny ends any user's session.
func (s *Server) revokeAny(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.parseForm(w, r) {
		return
	}
	id := r.PostForm.Get("id")
	if id == v.sess.ID() {
		s.logout(w, r)
		return
	}
	if id == "" {
		s.adminRefused(w, r, v, http.StatusBadRequest, "bad_request", "Choose a session to end.")
		return
	}
	switch err := s.cfg.Sessions.RevokeAny(r.Context(), id); {
	case errors.Is(err, session.ErrNotFound):
		s.adminRefused(w, r, v, http.StatusNotFound, "not_found", "That session does not exist or has already ended.")
	case err != nil:
		s.notDone(w, r, err, revokeNotDone, "")
	default:
		// The session_ended entry of the audit observer names its user.
		s.recordRevoked(r, v, "", id, 1, "one session")
		s.adminDone(w, r, "revoked")
	}
}
