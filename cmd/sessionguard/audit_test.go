package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"
)

// A user name typed at sign-in is the attacker's: its C1 controls (U+009B,
// the 8-bit CSI) and bidirectional overrides (U+202E) reach neither the
// terminal nor a script raw, in the table or in -json.
func TestProcessAuditEscapesTypedUserName(t *testing.T) {
	s := startServer(t)
	const typed = "root\u009b2J\u202enimda\u2066"
	resp, _ := do(t, "POST", s.url+"/auth/login", "", url.Values{"username": {typed}, "password": {"wrong password, surely"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the failed sign-in answered %d, want 401", resp.StatusCode)
	}

	raw := func(out string) []rune {
		var bad []rune
		for _, r := range strings.ReplaceAll(out, "\n", "") {
			if !unicode.IsGraphic(r) {
				bad = append(bad, r)
			}
		}
		return bad
	}
	table := mustCLI(t, s.dir, "", "audit", "-db", s.db, "-event", "login_failed")
	if bad := raw(table); len(bad) > 0 || !strings.Contains(table, `"root\u009b2J\u202enimda\u2066"`) {
		t.Errorf("audit shows %q raw, or not the escaped name:\n%s", bad, table)
	}

	lines := mustCLI(t, s.dir, "", "audit", "-db", s.db, "-event", "login_failed", "-json")
	if bad := raw(lines); len(bad) > 0 || !strings.Contains(lines, `"user":"root\u009b2J\u202enimda\u2066"`) {
		t.Errorf("audit -json holds %q raw, or not the escaped name:\n%s", bad, lines)
	}
	var entry struct{ User, Event string }
	if err := json.Unmarshal([]byte(lines), &entry); err != nil || entry.User != typed || entry.Event != "login_failed" {
		t.Errorf("audit -json reads back as %+v (%v), want the name as typed", entry, err)
	}
}
