package web

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
)

// maxAuditRows bounds the entries the audit page shows: the newest ones
// that match the filters.
const maxAuditRows = 200

// auditEvents are the events the audit page offers as filters.
var auditEvents = []audit.Event{
	audit.LoginSucceeded, audit.LoginFailed, audit.SessionStarted, audit.SessionRenewed, audit.SessionEnded,
	audit.SessionsRevoked, audit.PasswordChanged, audit.UserCreated, audit.UserDisabled, audit.UserEnabled,
	audit.Reauthenticated, audit.MFAEnrolled, audit.MFARemoved, audit.MFAFailed, audit.RecoveryCodeUsed, audit.MFAReset,
}

type period struct{ Value, Label string }

// auditPeriods are the "since" choices of the audit page; other durations
// work in the URL.
var auditPeriods = []period{
	{"", "Any time"}, {"1h", "Last hour"}, {"24h", "Last 24 hours"}, {"168h", "Last 7 days"}, {"720h", "Last 30 days"},
}

type auditView struct {
	User, Event, Since string
	Events             []audit.Event
	Periods            []period
	Entries            []auditRow // newest first
	More               bool
}

// auditRow is an entry as the page shows it: every text field through
// audit.Printable, because some are typed by clients (a failed sign-in's
// user name) and a bidirectional override or a control character would
// otherwise act on the page instead of showing.
type auditRow struct {
	Time                                     time.Time
	Event, User, Session, Reason, IP, Detail string
}

func auditRows(entries []audit.Entry) []auditRow {
	rows := make([]auditRow, len(entries))
	for i, e := range entries {
		rows[i] = auditRow{e.Time, audit.Printable(string(e.Event)), audit.Printable(e.User), audit.Printable(e.Session),
			audit.Printable(e.Reason), audit.Printable(e.IP), audit.Printable(e.Detail)}
	}
	return rows
}

// auditPage shows the audit log, newest first, filtered by user, event and
// age (?user=alice&event=login_failed&since=24h); as JSON {"entries": [...]}
// for JSON clients.
func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, v *visit) {
	q := r.URL.Query()
	vw := auditView{
		User:    strings.TrimSpace(q.Get("user")),
		Event:   q.Get("event"),
		Since:   q.Get("since"),
		Events:  auditEvents,
		Periods: auditPeriods,
	}
	f := audit.Filter{Event: audit.Event(vw.Event), Limit: maxAuditRows + 1}
	if vw.User != "" {
		// Account names are stored folded; a failed sign-in's name is kept
		// as typed, so an unfoldable name is searched as is.
		f.User = vw.User
		if n, err := account.NormalizeName(vw.User); err == nil {
			f.User = n
		}
	}
	if vw.Since != "" {
		d, err := time.ParseDuration(vw.Since)
		if err != nil || d <= 0 || d > 100*365*24*time.Hour {
			s.errorPage(w, r, http.StatusBadRequest, "bad_request", "The period must be a duration such as 24h.")
			return
		}
		f.Since = s.cfg.Clock.Now().Add(-d)
	}
	if vw.Event != "" && !slices.Contains(auditEvents, f.Event) {
		s.errorPage(w, r, http.StatusBadRequest, "bad_request", "There is no such event.")
		return
	}
	if !validText(vw.User) || len(vw.User) > maxUsernameLen {
		s.errorPage(w, r, http.StatusBadRequest, "bad_request", "The user name is not valid.")
		return
	}
	var entries []audit.Entry
	if s.cfg.Audit != nil {
		var err error
		if entries, err = s.cfg.Audit.Query(r.Context(), f); err != nil {
			s.unavailable(w, r, err)
			return
		}
	}
	if len(entries) > maxAuditRows {
		entries, vw.More = entries[len(entries)-maxAuditRows:], true
	}
	slices.Reverse(entries)
	if wantsJSON(r) {
		// Entry.MarshalJSON escapes what Printable would quote.
		s.writeJSON(w, r, http.StatusOK, struct {
			Entries []audit.Entry `json:"entries"`
			More    bool          `json:"more"`
		}{entries, vw.More})
		return
	}
	vw.Entries = auditRows(entries)
	s.renderUser(w, r, v, http.StatusOK, "audit", &view{Title: "Audit log", Nav: "admin", Content: vw})
}
