package session_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzMiddlewareCookie sends arbitrary Cookie headers through the middleware:
// never a panic, never a 5xx, never a session, and no store lookup unless the
// header carried a well-formed token.
func FuzzMiddlewareCookie(f *testing.F) {
	valid := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, seed := range []string{
		"__Host-session=" + valid,
		"__Host-session=" + valid[:42],
		"__Host-session=\xff\xfe\xfd",
		"__Host-session=" + strings.Repeat("A", 5000),
		"other=1; __Host-session=%00",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		h := newHarness(t, nil)
		before := h.store.gets.Load()
		r := httptest.NewRequest("GET", "/private", nil)
		r.Header.Set("Cookie", header)
		w := httptest.NewRecorder()
		h.h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d for Cookie %q", w.Code, header)
		}
		if h.store.gets.Load() != before && !carriesWellFormedToken(header) {
			t.Fatalf("Cookie %q reached the store without a well-formed token", header)
		}
	})
}

func carriesWellFormedToken(header string) bool {
	for part := range strings.SplitSeq(header, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k != "__Host-session" {
			continue
		}
		v = strings.Trim(v, `"`)
		b, err := base64.RawURLEncoding.Strict().DecodeString(v)
		return err == nil && len(b) == 32
	}
	return false
}
