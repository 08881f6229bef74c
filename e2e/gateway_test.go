package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sessionguard/sessionguard/internal/testproxy"
)

// appPage is a page of the application behind nginx: its own HTML, with a
// head for nginx's sub_filter to insert the timeout script into, and a
// sign-out button that posts to sessionguard on the same origin.
const appPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>Reports</title></head>
<body>
<h1>Quarterly reports</h1>
<form class="signout" method="post" action="/auth/logout"><button>Sign out</button></form>
</body></html>`

// The application behind nginx warns before the timeout like sessionguard's
// own pages: nginx sends the person to the sign-in page on the app's origin
// and back, inserts timeout.js into the app's page, and "Stay signed in"
// there extends the session past its original end.
func TestGatewayWarningThroughNginx(t *testing.T) {
	needBrowser(t)
	testproxy.Binary(t, testproxy.Nginx)
	var (
		mu    sync.Mutex
		users []string // Remote-User of every request the application got
	)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		users = append(users, r.Header.Get("Remote-User"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, appPage)
	}))
	t.Cleanup(app.Close)
	s := startServer(t, append([]string{"-trusted-proxy", "127.0.0.1/32"}, shortIdle...)...)
	proxy := testproxy.Start(t, testproxy.Nginx, testproxy.Backends{
		SessionGuard: strings.TrimPrefix(s.URL, "http://"),
		App:          strings.TrimPrefix(app.URL, "http://"),
	})
	const original = "/reports/q3?view=full"

	tab := newBrowser(t)
	do(t, tab, chromedp.Navigate(proxy.URL+original))
	waitFor(t, tab, 10*time.Second, "the sign-in page", onLoginPage)
	if at, _ := url.Parse(proxy.URL); location(t, tab).Host != at.Host || location(t, tab).Query().Get("next") != original {
		t.Fatalf("sent to %v, want the sign-in page on %s with next=%s", location(t, tab), proxy.URL, original)
	}
	signIn(t, tab, s, "alice")
	if got := location(t, tab); got.RequestURI() != original {
		t.Fatalf("after signing in the tab is at %v, want %s", got, original)
	}
	if !eval[bool](t, tab, `!!document.querySelector('script[src="/auth/timeout.js"]') && document.title === 'Reports'`) {
		t.Fatalf("the application's page has no timeout script: %s", eval[string](t, tab, `document.documentElement.outerHTML`))
	}
	mu.Lock()
	if len(users) == 0 || users[len(users)-1] != "alice" {
		t.Errorf("the application got Remote-User %q, want alice", users)
	}
	mu.Unlock()

	cookie := cookies(t, tab, s)
	st := s.status(t, cookie)
	end := time.Now().Add(seconds(st.IdleRemaining))
	waitFor(t, tab, 15*time.Second, "the warning on the application's page", dialogOpen)
	do(t, tab, chromedp.Click(chromedp.CSS("dialog.sessionguard-dialog .sessionguard-primary")))
	waitFor(t, tab, 3*time.Second, "the dialog to close after Stay signed in", dialogClosed)
	if st := s.status(t, cookie); !st.Authenticated || st.IdleRemaining <= st.WarnBefore+1 {
		t.Fatalf("after Stay signed in the server says %+v: the session was not extended", st)
	}

	holds(t, tab, time.Until(end)+2*time.Second, "the application's page stays open past the original end",
		`location.pathname === '/reports/q3'`)
	if st := s.status(t, cookie); !st.Authenticated {
		t.Fatalf("the session ended at its original deadline despite Stay signed in: %+v", st)
	}
	do(t, tab, chromedp.Navigate(proxy.URL+original))
	waitFor(t, tab, 10*time.Second, "the application's page again", `document.readyState === 'complete'`)
	if got := location(t, tab); got.Path != "/reports/q3" {
		t.Errorf("reloading the application's page after the original end went to %v", got)
	}
}
