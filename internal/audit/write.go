package audit

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// WriteJSONLines writes entries as JSON Lines: one object a line, with the
// keys of Entry's JSON form, for `sessionguard audit -json` and the scripts
// that read it. Every character that is not graphic is escaped (see
// Entry.MarshalJSON), so a line shown in a terminal cannot disturb it.
func WriteJSONLines(w io.Writer, entries []Entry) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // the reader is a program or a terminal, not a page
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}

// WriteTable writes entries as a table for people, one entry a line under a
// header: TIME (UTC, to the second), EVENT, USER, SESSION, REASON, IP and
// DETAIL, with "-" for an empty field. Every field goes through Printable,
// so what a client typed (a user name at sign-in) cannot disturb the table
// or the terminal.
func WriteTable(w io.Writer, entries []Entry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	io.WriteString(tw, "TIME\tEVENT\tUSER\tSESSION\tREASON\tIP\tDETAIL\n")
	for _, e := range entries {
		fields := []string{
			e.Time.UTC().Format(time.RFC3339), string(e.Event), e.User, e.Session, e.Reason, e.IP, e.Detail,
		}
		for i, f := range fields {
			if f == "" {
				fields[i] = "-"
			} else {
				fields[i] = Printable(f)
			}
		}
		io.WriteString(tw, strings.Join(fields, "\t")+"\n")
	}
	return tw.Flush()
}

// Printable returns s as a person may see it safely: unchanged when it is
// valid UTF-8 of graphic characters only (letters, marks, numbers,
// punctuation, symbols and plain spaces), else quoted with Go's escapes
// (strconv.QuoteToGraphic), so that control characters (C0, DEL and C1
// such as U+009B, the terminal's CSI), bidirectional overrides and
// isolates (U+202A–U+202E, U+2066–U+2069), other invisible format
// characters, line separators and invalid bytes show as \u009b, \u202e,
// \xff... instead of acting on the terminal or the page. Field values in
// the audit log are partly typed by clients, so every output of them goes
// through this or through Entry.MarshalJSON.
func Printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	return strconv.QuoteToGraphic(s)
}

// unsafeRune reports whether r must not be shown as it is.
func unsafeRune(r rune) bool { return !unicode.IsGraphic(r) }

// appendJSONString appends s as a JSON string in which every character
// that is not graphic is escaped: encoding/json leaves DEL, the C1
// controls and the bidirectional overrides as they are. Invalid bytes
// become \ufffd, as encoding/json makes them U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	escape := func(b []byte, r rune) []byte {
		return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	b = append(b, '"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = escape(b, unicode.ReplacementChar)
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case unsafeRune(r) && r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			b = escape(escape(b, r1), r2)
		case unsafeRune(r):
			b = escape(b, r)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
