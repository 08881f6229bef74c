package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/sessionguard/sessionguard/internal/account"
)

// A user name typed at sign-in is the attacker's: on the audit page its C1
// controls and bidirectional overrides show escaped instead of reordering
// or hiding the row, and the JSON form escapes them as \uXXXX.
func TestAuditPageEscapesTypedUserName(t *testing.T) {
	e := newEnv(t)
	e.addUser("root", rootPassword, account.RoleAdmin)
	admin := e.browser()
	admin.login("root", rootPassword)
	const typed = "root\u009b2J\u202enimda\u2066"
	wantStatus(t, e.browser().post("/auth/login", url.Values{"username": {typed}, "password": {"wrong password, surely"}}), http.StatusUnauthorized)

	raw := func(out string) []rune {
		var bad []rune
		for _, r := range out {
			if !unicode.IsGraphic(r) && !unicode.IsSpace(r) {
				bad = append(bad, r)
			}
		}
		return bad
	}
	page := wantStatus(t, admin.get("/admin/audit?event=login_failed"), http.StatusOK)
	if bad := raw(page); len(bad) > 0 {
		t.Errorf("the audit page holds %q raw", bad)
	}
	if !strings.Contains(page, `<td>&#34;root\u009b2J\u202enimda\u2066&#34;</td>`) {
		t.Errorf("the audit page does not show the escaped name:\n%s", page)
	}

	body := wantStatus(t, admin.get("/admin/audit?event=login_failed", "Accept", "application/json"), http.StatusOK)
	if bad := raw(body); len(bad) > 0 || !strings.Contains(body, `"user":"root\u009b2J\u202enimda\u2066"`) {
		t.Errorf("the JSON audit holds %q raw, or not the escaped name: %s", bad, body)
	}
}
