package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/sessionguard/sessionguard/internal/testbin"
)

// axeTags are the rules axe runs: every WCAG 2.0, 2.1 and 2.2 rule of
// levels A and AA it has.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"}

// axeSource is the text of the vendored axe-core (testdata/README.md).
var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile("testdata/axe.min.js")
	return string(b), err
})

// axeViolation is one rule a page breaks, with the elements that break it.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  string `json:"target"`
		HTML    string `json:"html"`
		Summary string `json:"summary"`
	} `json:"nodes"`
}

// axeResult is what the test keeps of an axe run: how many rules passed
// and the violations.
type axeResult struct {
	Passed     int            `json:"passed"`
	Violations []axeViolation `json:"violations"`
}

// checkAccessibility runs axe-core over the tab's page, in the light and in
// the dark colour scheme (the stylesheet has both), and fails the test for
// every WCAG 2.2 A or AA violation it finds. axe is evaluated through
// DevTools, which the pages' Content-Security-Policy does not govern.
func checkAccessibility(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatalf("reading axe-core: %v", err)
	}
	if !eval[bool](t, ctx, `typeof axe === 'object'`) {
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := chromedp.Run(c, chromedp.Evaluate[chromedp.Void](src))
		cancel()
		if err != nil {
			t.Fatalf("%s: loading axe-core: %v", page, err)
		}
	}
	run := `axe.run(document, {runOnly: {type: 'tag', values: ` + jsList(axeTags) + `}, resultTypes: ['violations']})
		.then((r) => ({passed: r.passes.length, violations: r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
			nodes: v.nodes.map((n) => ({target: JSON.stringify(n.target), html: n.html, summary: n.failureSummary}))}))}))`
	for _, scheme := range []string{"light", "dark"} {
		c, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, err := chromedp.Call(c, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		var result axeResult
		if err == nil {
			result, err = chromedp.Run(c, chromedp.Evaluate[axeResult](run, chromedp.EvalAwaitPromise))
		}
		cancel()
		if err != nil {
			t.Fatalf("%s (%s): running axe-core: %v", page, scheme, err)
		}
		if !eval[bool](t, ctx, `matchMedia('(prefers-color-scheme: `+scheme+`)').matches`) || result.Passed == 0 {
			t.Fatalf("%s (%s): axe-core checked nothing, or not in that scheme (%d rules passed)", page, scheme, result.Passed)
		}
		for _, v := range result.Violations {
			var where strings.Builder
			for _, n := range v.Nodes {
				fmt.Fprintf(&where, "\n\t%s %s\n\t\t%s", n.Target, n.HTML, strings.ReplaceAll(n.Summary, "\n", "\n\t\t"))
			}
			t.Errorf("%s (%s scheme): axe %s (%s): %s%s", page, scheme, v.ID, v.Impact, v.Help, where.String())
		}
	}
}

// jsList writes strings as a JavaScript array.
func jsList(list []string) string {
	quoted := make([]string, len(list))
	for i, s := range list {
		quoted[i] = jsString(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// addAccount adds an account to the running server's database from the
// command line, as an operator would.
func addAccount(t *testing.T, s *server, name, role string) {
	t.Helper()
	cmd := exec.Command(testbin.Path(t, false), "user", "add", "-db", s.DSN, "-role", role, "-password-stdin", name)
	cmd.Env = testbin.CleanEnv()
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user add %s: %v\n%s", name, err, out)
	}
}

// signInElsewhere signs user in from outside the browser, so that the
// pages listing sessions have another one, with its "End session" button.
func signInElsewhere(t *testing.T, s *server, user string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(s.URL+"/auth/login", url.Values{"username": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("signing %s in from outside: %d", user, resp.StatusCode)
	}
}

// Every page passes axe-core's WCAG 2.2 A and AA rules, in both colour
// schemes: the public ones, each signed-in one as an administrator sees it
// (with other sessions, users and audit entries in its tables), and the
// pages with their messages.
func TestPagesAreAccessible(t *testing.T) {
	// root signs in with a password alone: this test is about the pages
	// every administrator sees, not the second factor.
	s := startServer(t, "-admin-mfa", "optional")
	addAccount(t, s, "root", "admin")
	signInElsewhere(t, s, "alice")
	signInElsewhere(t, s, "root")
	tab := newBrowser(t)

	open(t, tab, s, "/auth/login")
	checkAccessibility(t, tab, "sign-in")
	open(t, tab, s, "/auth/login?reason=idle&next=/account")
	checkAccessibility(t, tab, "sign-in after a timeout")
	do(t, tab,
		chromedp.SetValue(chromedp.ID("username"), "alice"),
		chromedp.SetValue(chromedp.ID("password"), "not the password"),
		chromedp.Submit(chromedp.ID("password")),
	)
	waitFor(t, tab, 10*time.Second, "the sign-in page with its error", `!!document.querySelector('.problem') && document.readyState === 'complete'`)
	checkAccessibility(t, tab, "sign-in after a wrong password")

	signIn(t, tab, s, "root")
	for _, p := range []struct{ name, path string }{
		{"home", "/"},
		{"sessions", "/auth/sessions"},
		{"account", "/account"},
		{"admin", "/admin"},
		{"audit", "/admin/audit"},
		{"reauth", "/auth/reauth?next=%2Fauth%2Fsessions"},
		{"error", "/no/such/page"},
	} {
		open(t, tab, s, p.path)
		checkAccessibility(t, tab, p.name)
	}
}

// The account page's username field is there for password managers only:
// it takes neither room nor focus.
func TestAccountUsernameFieldIsHidden(t *testing.T) {
	s := startServer(t)
	tab := newBrowser(t)
	signIn(t, tab, s, "alice")
	open(t, tab, s, "/account")
	field := `document.querySelector('form[action="/account/password"] input[name="username"]')`
	if got := eval[string](t, tab, field+`.getAttribute('autocomplete') + ' ' + `+field+`.value`); got != "username alice" {
		t.Errorf("the field is %q, want autocomplete username with the user's name", got)
	}
	if shown := eval[string](t, tab, `getComputedStyle(`+field+`).display`); shown != "none" {
		t.Errorf("the hidden username field is displayed as %q", shown)
	}
	// Not displayed, it cannot take the focus, from Tab or from a script.
	reached := eval[bool](t, tab, `(() => {
		const f = `+field+`;
		f.focus();
		return document.activeElement === f;
	})()`)
	if reached {
		t.Error("the hidden username field takes focus")
	}
}

// setupLink finds the first-run link the server prints.
var setupLink = regexp.MustCompile(`/setup\?token=[A-Za-z0-9_-]+`)

// The first-run page, and the same with a mistake to correct.
func TestSetupPageIsAccessible(t *testing.T) {
	s := startServerWith(t, nil)
	var link string
	deadline := time.Now().Add(10 * time.Second)
	for link == "" {
		s.mu.Lock()
		link = setupLink.FindString(s.logs.String())
		s.mu.Unlock()
		if link == "" && time.Now().After(deadline) {
			t.Fatal("the server printed no setup link")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tab := newBrowser(t)
	open(t, tab, s, link)
	checkAccessibility(t, tab, "setup")
	do(t, tab,
		chromedp.SetValue(chromedp.ID("username"), "root"),
		chromedp.SetValue(chromedp.ID("password"), password),
		chromedp.SetValue(chromedp.ID("confirm"), password+" but different"),
		chromedp.Submit(chromedp.ID("confirm")),
	)
	waitFor(t, tab, 10*time.Second, "the setup page with its error", `!!document.querySelector('.problem') && document.readyState === 'complete'`)
	checkAccessibility(t, tab, "setup with a mistake")
}

// The warning before the idle timeout and the notice of the absolute
// limit, over the page they cover.
func TestTimeoutDialogsAreAccessible(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		// The warning 5 seconds after signing in, and long enough to check.
		s := startServer(t, "-idle-timeout", "2m", "-warn-before", "115s")
		tab := newBrowser(t)
		signIn(t, tab, s, "alice")
		waitFor(t, tab, 30*time.Second, "the warning", dialogOpen)
		checkAccessibility(t, tab, "idle warning")
	})
	t.Run("absolute", func(t *testing.T) {
		// The notice at once, and no idle warning for minutes.
		s := startServer(t, "-idle-timeout", "10m", "-absolute-timeout", "15m", "-absolute-warn-before", "15m")
		tab := newBrowser(t)
		signIn(t, tab, s, "alice")
		waitFor(t, tab, 30*time.Second, "the notice of the absolute limit", dialogOpen)
		checkAccessibility(t, tab, "absolute limit notice")
	})
}
