package web

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzSafeNext checks that whatever safeNext lets through stays on this
// site, even as a browser would read it (backslashes as slashes, tabs and
// newlines dropped, percent-escapes decoded).
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{
		"/", "/account", "/a?b=c#d", "//evil", "/\\evil", "\\\\evil", "https://evil/", "/%2F%2Fevil",
		"/\t/evil", "javascript:alert(1)", "/%5C%5Cevil", "/ok/../..//evil", "/@evil", "/.//evil", "\x00/",
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://sessionguard.test/page")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != "/" && got != next {
			t.Fatalf("safeNext(%q) = %q: neither the input nor /", next, got)
		}
		for _, form := range []string{got, browserForm(got), decodedForm(got)} {
			u, err := url.Parse(form)
			if err != nil {
				continue // a browser would not follow it either
			}
			if r := base.ResolveReference(u); r.Host != base.Host || r.Scheme != base.Scheme {
				t.Fatalf("safeNext(%q) = %q resolves to %q", next, got, r)
			}
		}
	})
}

// browserForm is how the WHATWG URL parser reads a path of a special
// scheme: tabs and newlines removed, backslashes as slashes.
func browserForm(s string) string {
	s = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s)
	return strings.ReplaceAll(s, "\\", "/")
}

func decodedForm(s string) string {
	path, _, _ := strings.Cut(s, "?")
	d, err := url.PathUnescape(path)
	if err != nil {
		return s
	}
	return browserForm(d)
}

func TestSafeNextTable(t *testing.T) {
	for _, tc := range []struct {
		in   string
		safe bool
	}{
		{"/", true},
		{"/account", true},
		{"/admin/audit?user=bob&since=24h", true},
		{"/a#frag", true},
		{"/caf%C3%A9", true},
		{"/café", true},
		{"", false},
		{"account", false},
		{"//evil.example", false},
		{"///evil.example", false},
		{"/\\evil.example", false},
		{"/a\\b", false},
		{"https://evil.example", false},
		{"HTTPS://evil.example", false},
		{"mailto:x@evil.example", false},
		{"/\x00", false},
		{"/\x7f", false},
		{"/a\u0085b", false},
		{"/a b", false},
		{"/\xff", false},
		{"/%2f/evil.example", false},
		{"/%5c/evil.example", false},
		{"/" + strings.Repeat("x", maxNextLen), false},
	} {
		if got := safeNext(tc.in) == tc.in && tc.in != "/" || tc.in == "/"; got != tc.safe {
			t.Errorf("safeNext(%q) = %q, safe %v, want %v", tc.in, safeNext(tc.in), got, tc.safe)
		}
	}
}

func TestRedirectHosts(t *testing.T) {
	rh, err := NewRedirectHosts([]string{"Grafana.example.com", "wiki.example.org:8443"}, ".corp.example")
	if err != nil {
		t.Fatal(err)
	}
	for next, want := range map[string]string{
		"/reports?q=1":                          "/reports?q=1",
		"https://grafana.example.com/d/1?x=2":   "https://grafana.example.com/d/1?x=2",
		"http://grafana.example.com:3000/":      "http://grafana.example.com:3000/",
		"https://wiki.example.org:8443/page":    "https://wiki.example.org:8443/page",
		"https://wiki.example.org/page":         "/", // another port than listed
		"https://app.corp.example/x":            "https://app.corp.example/x",
		"https://corp.example/":                 "https://corp.example/",
		"https://evilcorp.example/":             "/",
		"https://grafana.example.com.evil.net/": "/",
		"https://evil.net/?grafana.example.com": "/",
		"https://user@grafana.example.com/":     "/",
		"javascript://grafana.example.com/%0a":  "/",
		"HTTPS://grafana.example.com/":          "/", // written other than url.Parse reads it
		"https:grafana.example.com/":            "/",
		"https://grafana.example.com\\@evil/":   "/",
		"https://grafana.example.com/\t/x":      "/",
		"ftp://grafana.example.com/":            "/",
		"//grafana.example.com/":                "/",
	} {
		if got := rh.nextTarget(next); got != want {
			t.Errorf("nextTarget(%q) = %q, want %q", next, got, want)
		}
	}
	var none RedirectHosts
	if got := none.nextTarget("https://grafana.example.com/"); got != "/" {
		t.Errorf("the zero RedirectHosts allowed %q", got)
	}
	for _, bad := range []string{"", "https://x.example", "x.example/path", "user@x.example", "x.example?q"} {
		if _, err := NewRedirectHosts([]string{bad}, ""); err == nil {
			t.Errorf("NewRedirectHosts accepted %q", bad)
		}
	}
}

// TestSignInReturnsToAllowedHost: signing in sends the browser back to a
// protected application's absolute URL only when its host is allowed.
func TestSignInReturnsToAllowedHost(t *testing.T) {
	rh, err := NewRedirectHosts([]string{"grafana.example.com"}, "")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.RedirectHosts = rh })
	e.addUser("alice", alicePassword, "user")
	for next, want := range map[string]string{
		"https://grafana.example.com/d/1": "https://grafana.example.com/d/1",
		"https://evil.example.net/":       "/",
	} {
		c := e.browser()
		res := c.post("/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}, "next": {next}}, "Accept", "text/html")
		wantRedirect(t, res, want)
		// Signed in already, the sign-in page forwards the same way.
		wantRedirect(t, c.get("/auth/login?next="+url.QueryEscape(next)), want)
	}
}

// TestEmbeddedPagesLinkUnderAuth: in front of another application, which
// owns /account and /admin, the pages link only to sessionguard's own.
func TestEmbeddedPagesLinkUnderAuth(t *testing.T) {
	for _, embedded := range []bool{false, true} {
		e := newEnv(t, func(c *Config) { c.Embedded = embedded })
		e.addUser("root", rootPassword, "admin")
		c := e.browser()
		c.login("root", rootPassword)
		body := wantStatus(t, c.get("/auth/sessions"), 200)
		for _, link := range []string{`href="/account"`, `href="/admin"`} {
			if strings.Contains(body, link) == embedded {
				t.Errorf("embedded %v: the sessions page has %s: %v", embedded, link, !embedded)
			}
		}
		if !strings.Contains(body, `href="/auth/static/style.css"`) {
			t.Errorf("embedded %v: the stylesheet is not under /auth/", embedded)
		}
	}
}
