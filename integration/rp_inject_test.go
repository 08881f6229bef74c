package integration

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// rpScriptTag is the tag sessionguard inserts into the upstream's pages.
const rpScriptTag = `<script src="/auth/timeout.js" defer></script>`

// The upstream's pages in the injection tests.
const (
	rpPage         = `<!doctype html><html><head><meta charset="utf-8"><title>App</title></head><body><p>The application.</p></body></html>`
	rpHeadlessPage = `<!doctype html><p>A page without a head element.</p></body></html>`
	rpJSON         = `{"html":"<html><head></head><body></body></html>","n":1}`
	rpCSP          = "default-src 'self' 'unsafe-inline'"
)

// rpInjectUpstream is an upstream serving rpPage plain (/page) and gzip-
// compressed (/page.gz), a page without </head> (/headless) and JSON
// holding HTML (/data.json). It returns the compressed page's bytes.
func rpInjectUpstream(t *testing.T) (*rpUpstream, []byte) {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, rpPage)
	zw.Close()
	compressed := gz.Bytes()

	up := newRPUpstream(t)
	serve := func(path, contentType, encoding string, body []byte) {
		up.mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", contentType)
			h.Set("Content-Length", strconv.Itoa(len(body)))
			h.Set("Content-Security-Policy", rpCSP)
			if encoding != "" {
				h.Set("Content-Encoding", encoding)
				h.Set("Vary", "Accept-Encoding")
			}
			w.Write(body)
		})
	}
	serve("/page", "text/html; charset=utf-8", "", []byte(rpPage))
	serve("/page.gz", "text/html; charset=utf-8", "gzip", compressed)
	serve("/headless", "text/html; charset=utf-8", "", []byte(rpHeadlessPage))
	serve("/data.json", "application/json", "", []byte(rpJSON))
	return up, compressed
}

// TestReverseProxyInjectScript: the upstream's HTML documents, plain or
// gzip-compressed, get the timeout script once before </head> (or
// </body>); HTML fetched by a script, JSON and everything else pass byte
// for byte; -inject-script=false turns it off.
func TestReverseProxyInjectScript(t *testing.T) {
	up, compressed := rpInjectUpstream(t)
	s := startReverseProxy(t, up)
	b := s.browser()
	b.login(t, "alice", alicePassword)

	t.Run("Document", func(t *testing.T) {
		resp := b.send(t, b.navigate("GET", "/page", nil))
		rpExpectInjected(t, "GET /page as a document", resp, "", rpPage, "</head>")
		if got := resp.header.Get("Content-Security-Policy"); got != rpCSP {
			t.Errorf("GET /page: Content-Security-Policy %q, want the upstream's %q left as is", got, rpCSP)
		}
	})
	t.Run("WithoutHead", func(t *testing.T) {
		resp := b.send(t, b.navigate("GET", "/headless", nil))
		rpExpectInjected(t, "GET /headless as a document", resp, "", rpHeadlessPage, "</body>")
	})
	t.Run("Gzip", func(t *testing.T) {
		r := b.navigate("GET", "/page.gz", nil)
		r.Header.Set("Accept-Encoding", "gzip, deflate, br")
		resp := b.send(t, r)
		// Sending the page compressed again or decompressed are both
		// right; what matters is that it decodes to the page with the
		// script.
		t.Logf("GET /page.gz as a document: Content-Encoding %q", resp.header.Get("Content-Encoding"))
		rpExpectInjected(t, "GET /page.gz as a document", resp, resp.header.Get("Content-Encoding"), rpPage, "</head>")
	})
	t.Run("OldBrowser", func(t *testing.T) {
		// No Sec-Fetch-* headers: a navigation is told by its Accept.
		r := b.newRequest("GET", "/page", nil)
		r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
		rpExpectInjected(t, "GET /page from a browser without Sec-Fetch-*", b.send(t, r), "", rpPage, "</head>")
	})

	untouched := []struct {
		what     string
		r        *http.Request
		body     []byte
		encoding string
	}{
		{"fetch of /page", rpHTMLFetch(b, "/page"), []byte(rpPage), ""},
		{"fetch of /page.gz", rpHTMLFetch(b, "/page.gz"), compressed, "gzip"},
		{"XHR of /page from a browser without Sec-Fetch-*", rpOldXHR(b, "/page"), []byte(rpPage), ""},
		{"/data.json as a document", b.navigate("GET", "/data.json", nil), []byte(rpJSON), ""},
		{"fetch of /data.json", b.fetch("GET", "/data.json", nil), []byte(rpJSON), ""},
	}
	for _, c := range untouched {
		t.Run("Untouched "+c.what, func(t *testing.T) {
			c.r.Header.Set("Accept-Encoding", "gzip")
			rpExpectUntouched(t, c.what, b.send(t, c.r), c.body, c.encoding)
		})
	}

	t.Run("Off", func(t *testing.T) {
		up, compressed := rpInjectUpstream(t)
		s := startReverseProxy(t, up, "-inject-script=false")
		b := s.browser()
		b.login(t, "alice", alicePassword)
		rpExpectUntouched(t, "GET /page as a document with -inject-script=false", b.send(t, b.navigate("GET", "/page", nil)), []byte(rpPage), "")
		r := b.navigate("GET", "/page.gz", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		rpExpectUntouched(t, "GET /page.gz as a document with -inject-script=false", b.send(t, r), compressed, "gzip")
	})
}

// rpHTMLFetch is a script's fetch() of an HTML fragment or template.
func rpHTMLFetch(b *rpBrowser, path string) *http.Request {
	r := b.fetch("GET", path, nil)
	r.Header.Set("Accept", "*/*")
	return r
}

// rpOldXHR is an XMLHttpRequest from a browser that sends no Sec-Fetch-*.
func rpOldXHR(b *rpBrowser, path string) *http.Request {
	r := b.newRequest("GET", path, nil)
	r.Header.Set("Accept", "*/*")
	r.Header.Set("X-Requested-With", "XMLHttpRequest")
	return r
}

// rpExpectInjected checks that resp, decoded by encoding, is page with the
// timeout script inserted once, right before the first of before.
func rpExpectInjected(t *testing.T, what string, resp rpResponse, encoding, page, before string) {
	t.Helper()
	if resp.status != http.StatusOK {
		t.Fatalf("%s: %d %.300s", what, resp.status, resp.body)
	}
	body := rpDecode(t, what, resp, encoding)
	if n := strings.Count(body, rpScriptTag); n != 1 {
		t.Fatalf("%s: the script tag %d times, want once:\n%s", what, n, body)
	}
	head, tail, _ := strings.Cut(body, rpScriptTag)
	// Whitespace around the tag is the injector's choice.
	if !strings.HasPrefix(strings.TrimLeft(tail, " \t\r\n"), before) {
		t.Errorf("%s: the script is not right before %s:\n%s", what, before, body)
	}
	if got := strings.TrimRight(head, " \t\r\n") + strings.TrimLeft(tail, " \t\r\n"); got != page {
		t.Errorf("%s: without the script tag the page is\n%s\nwant\n%s", what, got, page)
	}
}

// rpExpectUntouched checks that resp carries body byte for byte, with
// Content-Encoding encoding.
func rpExpectUntouched(t *testing.T, what string, resp rpResponse, body []byte, encoding string) {
	t.Helper()
	if resp.status != http.StatusOK {
		t.Fatalf("%s: %d %.300s", what, resp.status, resp.body)
	}
	if got := resp.header.Get("Content-Encoding"); got != encoding {
		t.Errorf("%s: Content-Encoding %q, want %q as the upstream sent it", what, got, encoding)
	}
	if resp.body != string(body) {
		t.Errorf("%s: the body changed:\n%q\nwant\n%q", what, resp.body, body)
	}
}

// rpDecode returns resp's body decoded by encoding ("" or "identity": as
// is; "gzip"); any other fails the test.
func rpDecode(t *testing.T, what string, resp rpResponse, encoding string) string {
	t.Helper()
	switch encoding {
	case "", "identity":
		return resp.body
	case "gzip":
		zr, err := gzip.NewReader(strings.NewReader(resp.body))
		if err != nil {
			t.Fatalf("%s: Content-Encoding gzip, but the body is not gzip: %v", what, err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: the gzip body does not decode: %v", what, err)
		}
		return string(b)
	default:
		t.Fatalf("%s: Content-Encoding %q, which the client did not ask for", what, encoding)
		return ""
	}
}
