package audit_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

// hostile holds what a client can type as a user name to act on a terminal
// or a page: C0, DEL and C1 controls (U+009B is the 8-bit CSI), the
// bidirectional overrides and isolates, a line separator, a zero-width
// space, a format character beyond the BMP, and an invalid byte.
const hostile = "evil\x1b[31m\u009b31m\u0085\u007f" +
	"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u200b\U0001D173" + "adm\xffin\t\"q\"\\"

// shown reports the characters of out, but its line ends, that act instead
// of showing; an invalid byte counts as one.
func shown(out string) []rune {
	var bad []rune
	if !utf8.ValidString(out) {
		bad = append(bad, utf8.RuneError)
	}
	for _, r := range strings.ReplaceAll(out, "\n", "") {
		if !unicode.IsGraphic(r) {
			bad = append(bad, r)
		}
	}
	return bad
}

func TestOutputsEscapeWhatClientsType(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		l := newLog(t, db, sessiontest.NewClock(start))
		if err := l.Record(t.Context(), audit.Entry{Time: start, Event: audit.LoginFailed, User: hostile,
			Reason: audit.ReasonInvalidCredentials, IP: "192.0.2.1", Detail: "\u202eexe.txt"}); err != nil {
			t.Fatal(err)
		}
		entries, err := l.Query(t.Context(), audit.Filter{})
		if err != nil || len(entries) != 1 {
			t.Fatalf("Query: %v, %v", entries, err)
		}

		var table bytes.Buffer
		if err := audit.WriteTable(&table, entries); err != nil {
			t.Fatal(err)
		}
		if bad := shown(table.String()); len(bad) > 0 {
			t.Errorf("the table shows %q raw:\n%s", bad, table.String())
		}
		for _, want := range []string{`\u009b`, `\u202e`, `\u2066`, `\u0085`, `\x7f`, `\x1b`, `\U0001d173`, `\t`, `"\u202eexe.txt"`} {
			if !strings.Contains(table.String(), want) {
				t.Errorf("the table lacks %s:\n%s", want, table.String())
			}
		}

		var lines bytes.Buffer
		if err := audit.WriteJSONLines(&lines, entries); err != nil {
			t.Fatal(err)
		}
		out := lines.String()
		if bad := shown(out); len(bad) > 0 {
			t.Errorf("the JSON line holds %q raw: %s", bad, out)
		}
		for _, want := range []string{`\u009b`, `\u202a`, `\u202e`, `\u2066`, `\u2069`, `\u2028`, `\u200b`, `\u007f`, `\u0085`, `\ud834\udd73`, `\u001b`} {
			if !strings.Contains(out, want) {
				t.Errorf("the JSON line lacks %s: %s", want, out)
			}
		}
		var back audit.Entry
		if err := json.Unmarshal(lines.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		if want := strings.ToValidUTF8(hostile, "\uFFFD"); back.User != want || back.Detail != "\u202eexe.txt" {
			t.Errorf("the JSON line reads back as %q, %q; want %q", back.User, back.Detail, want)
		}
	})
}

// Entries that did not pass through Record (read from an older database,
// or built by a program) may hold invalid bytes: they are escaped too.
func TestOutputsEscapeInvalidBytes(t *testing.T) {
	entries := []audit.Entry{{Time: start, Event: audit.LoginFailed, User: "adm\xffin\u202e", Detail: "\xc3"}}
	var table, lines bytes.Buffer
	if err := audit.WriteTable(&table, entries); err != nil {
		t.Fatal(err)
	}
	if err := audit.WriteJSONLines(&lines, entries); err != nil {
		t.Fatal(err)
	}
	if bad := shown(table.String()); len(bad) > 0 || !strings.Contains(table.String(), `"adm\xffin\u202e"`) {
		t.Errorf("table:\n%s", table.String())
	}
	if bad := shown(lines.String()); len(bad) > 0 || !strings.Contains(lines.String(), `"user":"adm\ufffdin\u202e"`) ||
		!strings.Contains(lines.String(), `"detail":"\ufffd"`) {
		t.Errorf("JSON line: %s", lines.String())
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                "alice",
		"Zoë Ångström 日本 ü":    "Zoë Ångström 日本 ü",
		"a b":                  "a b",
		"<b>&</b>":             "<b>&</b>",
		"":                     "",
		"a\u202eb":             `"a\u202eb"`,
		"\u009b31m":            `"\u009b31m"`,
		"\u2067x\u2069":        `"\u2067x\u2069"`,
		"bad\xff":              `"bad\xff"`,
		"tab\there":            `"tab\there"`,
		"nbsp\u00a0and\u3000 ": "nbsp\u00a0and\u3000 ",
	} {
		if got := audit.Printable(in); got != want {
			t.Errorf("Printable(%q) = %s, want %s", in, got, want)
		}
	}
}
