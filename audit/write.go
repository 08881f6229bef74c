package audit

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// WriteJSONLines writes entries as JSON Lines: one object a line, with the
// keys of Entry's JSON form, for `sessionguard audit -json` and the scripts
// that read it.
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
// DETAIL, with "-" for an empty field. Characters that could disturb the
// table or the terminal (tabs, newlines, escape sequences from a typed user
// name) are shown quoted and escaped.
func WriteTable(w io.Writer, entries []Entry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	io.WriteString(tw, "TIME\tEVENT\tUSER\tSESSION\tREASON\tIP\tDETAIL\n")
	for _, e := range entries {
		fields := []string{
			e.Time.UTC().Format(time.RFC3339), string(e.Event), e.User, e.Session, e.Reason, e.IP, e.Detail,
		}
		for i, f := range fields {
			fields[i] = cell(f)
		}
		io.WriteString(tw, strings.Join(fields, "\t")+"\n")
	}
	return tw.Flush()
}

// cell returns s as it should appear in the table.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || r == '\t' }) {
		return strconv.QuoteToGraphic(s)
	}
	return s
}
