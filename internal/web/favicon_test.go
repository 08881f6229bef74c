package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sessionguard/sessionguard/internal/account"
)

// Every page links an SVG icon; /favicon.ico, which browsers and tools ask
// for anyway, answers 204 rather than a 404 that every page's console and
// every audit would report, and may be cached for a day.
func TestFavicon(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()

	for _, method := range []string{"GET", "HEAD"} {
		res := c.do(method, "/favicon.ico", nil)
		body := readBody(res)
		if res.StatusCode != http.StatusNoContent || body != "" {
			t.Errorf("%s /favicon.ico: %d %q, want 204 and no body", method, res.StatusCode, body)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=86400" {
			t.Errorf("%s /favicon.ico: Cache-Control %q, want it cacheable for a day", method, cc)
		}
	}

	res := c.get("/auth/static/favicon.svg")
	svg := wantStatus(t, res, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); ct != "image/svg+xml" || !strings.HasPrefix(svg, "<svg ") {
		t.Errorf("favicon.svg: %s, %.40q", ct, svg)
	}
	if res.Header.Get("ETag") == "" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("favicon.svg is not cacheable with revalidation: %v", res.Header)
	}

	const link = `<link rel="icon" href="/auth/static/favicon.svg" type="image/svg+xml">`
	if page := wantStatus(t, c.get("/auth/login"), http.StatusOK); !strings.Contains(page, link) {
		t.Errorf("the sign-in page does not link the icon")
	}
	c.login("alice", alicePassword)
	if page := wantStatus(t, c.get("/"), http.StatusOK); !strings.Contains(page, link) {
		t.Errorf("the home page does not link the icon")
	}
}
