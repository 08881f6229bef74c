package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/session"
)

type setupView struct {
	Token     string
	Username  string
	MinLength int
}

// setupOpen checks that the first-run page may be shown: 404 without a
// setup token or with a wrong one, 410 once an account exists. It reports
// whether the handler may go on.
func (s *Server) setupOpen(w http.ResponseWriter, r *http.Request, token string) bool {
	if s.cfg.Setup == nil {
		s.notFound(w, r)
		return false
	}
	n, err := s.cfg.Accounts.Count(r.Context())
	if err != nil {
		s.unavailable(w, r, err)
		return false
	}
	if n > 0 {
		s.errorPage(w, r, http.StatusGone, "setup_done",
			"This server is set up already. Sign in, or ask an administrator for an account.")
		return false
	}
	switch ok, err := s.cfg.Setup.Valid(r.Context(), token); {
	case err != nil:
		s.unavailable(w, r, err)
		return false
	case !ok:
		s.errorPage(w, r, http.StatusNotFound, "not_found",
			"This setup link is wrong or has expired. Restart the server for a new one.")
		return false
	}
	return true
}

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	if !s.setupOpen(w, r, token) {
		return
	}
	s.render(w, r, http.StatusOK, "setup", &view{Title: "Set up sessionguard",
		Content: setupView{Token: token, MinLength: account.MinPasswordLength}})
}

// setupSubmit creates the first administrator, uses the token up, and
// signs them in.
func (s *Server) setupSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	token := r.PostForm.Get("token")
	if !s.setupOpen(w, r, token) {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	again := func(msg string) {
		s.render(w, r, http.StatusBadRequest, "setup", &view{Title: "Set up sessionguard", Error: msg,
			Content: setupView{Token: token, Username: name, MinLength: account.MinPasswordLength}})
	}
	if confirm, ok := r.PostForm["confirm_password"]; ok && confirm[0] != password {
		again("The two passwords are not the same.")
		return
	}
	err := s.cfg.Setup.Use(r.Context(), token, func() error {
		return s.cfg.Accounts.CreateFirstAdmin(r.Context(), name, password)
	})
	switch msg, input := inputProblem(err); {
	case err == nil:
	case input:
		again(msg)
		return
	case errors.Is(err, account.ErrAccountsExist):
		s.errorPage(w, r, http.StatusGone, "setup_done", "This server is set up already. Sign in.")
		return
	case errors.Is(err, account.ErrInvalidSetupToken):
		s.errorPage(w, r, http.StatusNotFound, "not_found", "This setup link is wrong, used or expired.")
		return
	default:
		s.accountFailed(w, r, err)
		return
	}
	u, err := s.cfg.Accounts.Get(r.Context(), name)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	ip := s.cfg.ClientIP(r)
	s.record(r.Context(), audit.Entry{Event: audit.UserCreated, User: u.Name, IP: ip, Detail: "first administrator, by the setup link"})
	// The setup link and the password are one factor: where the policy
	// asks administrators for a second one, the new administrator enrols
	// it before the first session starts, as at any sign-in.
	if d, err := s.decide(r.Context(), u); err != nil {
		s.unavailable(w, r, err)
		return
	} else if d != account.MFANoneNeeded {
		s.beginPending(w, r, u, "/", d)
		return
	}
	sess, err := s.cfg.Sessions.Login(w, r, u.Name, session.LoginOptions{Policy: s.policyFor(string(u.Role))})
	if err != nil {
		// The account exists; signing in by hand works once the store
		// answers again.
		s.unavailable(w, r, err)
		return
	}
	s.record(r.Context(), audit.Entry{Event: audit.LoginSucceeded, User: u.Name, Session: sess.ID(), IP: ip})
	s.cfg.Metrics.Login(metrics.LoginSuccess)
	seeOther(w, "/")
}
