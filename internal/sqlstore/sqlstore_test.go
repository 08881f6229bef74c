package sqlstore

import (
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// Equal maps must encode to equal text, whatever order they were filled
// in: SaveData compares the stored text with the encoding of old.
func TestEncodeDataIsCanonical(t *testing.T) {
	a, b := map[string]string{}, map[string]string{}
	for i := range 50 {
		a[fmt.Sprint("k", i)] = fmt.Sprint(i)
		b[fmt.Sprint("k", 49-i)] = fmt.Sprint(49 - i)
	}
	ea, err1 := EncodeData(a)
	eb, err2 := EncodeData(b)
	if err1 != nil || err2 != nil || ea != eb {
		t.Fatalf("equal maps encoded differently: %v, %v", err1, err2)
	}
	for _, empty := range []map[string]string{nil, {}} {
		if e, err := EncodeData(empty); e != nil || err != nil {
			t.Errorf("EncodeData(%#v) = %v, %v; want NULL", empty, e, err)
		}
	}
	got, err := DecodeData([]byte(ea.(string)))
	if err != nil || !maps.Equal(got, a) {
		t.Errorf("DecodeData(EncodeData(a)) = %v, %v", got, err)
	}
	for _, b := range [][]byte{nil, []byte("{}")} {
		if got, err := DecodeData(b); got != nil || err != nil {
			t.Errorf("DecodeData(%q) = %#v, %v; want nil", b, got, err)
		}
	}
	for _, bad := range []map[string]string{{"k": "a\x00"}, {"\xff": "v"}} {
		if _, err := EncodeData(bad); err == nil {
			t.Errorf("EncodeData(%q) succeeded", bad)
		}
	}
}

func TestKeepUntilSaturates(t *testing.T) {
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if got := KeepUntil(at, time.Hour); !got.Equal(at.Add(time.Hour)) {
		t.Errorf("KeepUntil(at, 1h) = %v", got)
	}
	if got := KeepUntil(at, time.Duration(1<<63-1)); !got.Equal(session.MaxStoreTime) {
		t.Errorf("KeepUntil(at, forever) = %v, want %v", got, session.MaxStoreTime)
	}
}

type pgError struct{ code string }

func (e pgError) Error() string    { return "pg " + e.code }
func (e pgError) SQLState() string { return e.code }

type sqliteError struct{ code int }

func (e sqliteError) Error() string { return fmt.Sprint("sqlite ", e.code) }
func (e sqliteError) Code() int     { return e.code }

func TestIsUniqueViolation(t *testing.T) {
	for err, want := range map[error]bool{
		pgError{"23505"}:                      true,
		pgError{"23503"}:                      false,
		sqliteError{2067}:                     true,
		sqliteError{1555}:                     true,
		sqliteError{19}:                       false,
		fmt.Errorf("x: %w", pgError{"23505"}): true,
		errors.New("other"):                   false,
	} {
		if got := IsUniqueViolation(err); got != want {
			t.Errorf("IsUniqueViolation(%v) = %v, want %v", err, got, want)
		}
	}
	if IsUniqueViolation(nil) {
		t.Error("IsUniqueViolation(nil) = true")
	}
}

func TestWrapKeepsSentinels(t *testing.T) {
	for _, err := range []error{session.ErrNotFound, session.ErrStale} {
		if got := Wrap("pkg", "op", err); got != err {
			t.Errorf("Wrap(%v) = %v, want it unchanged", err, got)
		}
	}
	if got := Wrap("pkg", "op", errors.New("boom")); got.Error() != "pkg: op: boom" {
		t.Errorf("Wrap = %q", got)
	}
	if Wrap("pkg", "op", nil) != nil {
		t.Error("Wrap(nil) != nil")
	}
}

func TestFileURI(t *testing.T) {
	if got, want := FileURI("/a ?b#c%d.db"), "file:/a %3Fb%23c%25d.db"; got != want {
		t.Errorf("FileURI = %q, want %q", got, want)
	}
}
