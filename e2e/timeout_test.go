package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The timeouts of most tests: short, with margins that hold on a loaded
// two-core machine. The warning shows 4 seconds after the last activity and
// the session ends 6 seconds later.
var shortIdle = []string{"-idle-timeout", "10s", "-warn-before", "6s"}

// dialogJSON describes the open dialog as a screen reader meets it.
type dialogJSON struct {
	Role        string   `json:"role"`
	Modal       string   `json:"modal"`
	Label       string   `json:"label"`
	Description string   `json:"description"`
	Focused     string   `json:"focused"`
	FocusInside bool     `json:"focusInside"`
	Live        string   `json:"live"`
	Buttons     []string `json:"buttons"`
	Countdown   string   `json:"countdown"`
}

const describeDialog = `(() => {
	const d = document.querySelector('dialog.sessionguard-dialog[open]');
	const text = (id) => { const e = id && document.getElementById(id); return e ? e.textContent : ''; };
	const live = d.querySelector('[aria-live]');
	return {
		role: d.getAttribute('role'),
		modal: d.getAttribute('aria-modal'),
		label: text(d.getAttribute('aria-labelledby')),
		description: text(d.getAttribute('aria-describedby')),
		focused: document.activeElement.textContent,
		focusInside: d.contains(document.activeElement),
		live: live ? live.getAttribute('aria-live') : '',
		buttons: Array.from(d.querySelectorAll('button'), (b) => b.textContent),
		countdown: d.querySelector('.sessionguard-countdown').textContent,
	};
})()`

// The warning appears warn-before ahead of the idle end, as an accessible
// alert dialog with the focus on "Stay signed in"; Escape and the button
// extend the session (any number of times); "Sign out" signs out.
func TestWarningDialog(t *testing.T) {
	s := startServer(t, shortIdle...)
	tab := newBrowser(t)
	signIn(t, tab, s, "alice")
	cookie := cookies(t, tab, s)

	// Focus a field without any input event, to see it come back.
	eval[bool](t, tab, `document.getElementById('note-text').focus(), true`)
	st := s.status(t, cookie)
	due := time.Now().Add(seconds(st.IdleRemaining - st.WarnBefore))
	appeared := waitFor(t, tab, 15*time.Second, "the warning", dialogOpen)
	if early, late := due.Sub(appeared), appeared.Sub(due); early > 700*time.Millisecond || late > 2500*time.Millisecond {
		t.Errorf("the warning appeared %v from when it was due (%v before the idle end)", appeared.Sub(due), seconds(st.WarnBefore))
	}

	d := eval[dialogJSON](t, tab, describeDialog)
	if d.Role != "alertdialog" || d.Modal != "true" {
		t.Errorf("role %q, aria-modal %q; want alertdialog and true", d.Role, d.Modal)
	}
	if d.Label == "" || !strings.Contains(d.Description, "second") {
		t.Errorf("label %q, description %q: want a label and a description with the time left", d.Label, d.Description)
	}
	if d.Focused != "Stay signed in" || !d.FocusInside {
		t.Errorf("focus is on %q, want the Stay signed in button", d.Focused)
	}
	if want := []string{"Stay signed in", "Sign out"}; strings.Join(d.Buttons, "|") != strings.Join(want, "|") {
		t.Errorf("buttons %q, want %q", d.Buttons, want)
	}
	if d.Live == "" {
		t.Error("the dialog has no live region for screen readers")
	}

	// The countdown runs.
	time.Sleep(1200 * time.Millisecond)
	if later := eval[dialogJSON](t, tab, describeDialog); later.Countdown == d.Countdown {
		t.Errorf("the countdown stayed at %q", d.Countdown)
	}

	// Focus stays in the dialog.
	for _, want := range []string{"Sign out", "Stay signed in", "Sign out"} {
		do(t, tab, chromedp.KeyEvent(kb.Tab))
		if got := eval[dialogJSON](t, tab, describeDialog); got.Focused != want || !got.FocusInside {
			t.Fatalf("after Tab the focus is on %q (inside: %v), want %q", got.Focused, got.FocusInside, want)
		}
	}

	// Escape means stay signed in; then the button, twice more.
	extend := []struct {
		how    string
		action chromedp.Action[chromedp.Void]
	}{
		{"Escape", chromedp.KeyEvent(kb.Escape)},
		{"the button", chromedp.Click(chromedp.CSS("dialog.sessionguard-dialog .sessionguard-primary"))},
		{"the button again", chromedp.Click(chromedp.CSS("dialog.sessionguard-dialog .sessionguard-primary"))},
	}
	for i, e := range extend {
		if i > 0 {
			waitFor(t, tab, 15*time.Second, "the warning again", dialogOpen)
		}
		do(t, tab, e.action)
		waitFor(t, tab, 3*time.Second, "the dialog to close after "+e.how, dialogClosed)
		if st := s.status(t, cookie); !st.Authenticated || st.IdleRemaining <= st.WarnBefore+1 {
			t.Fatalf("after %s the server says %+v: the session was not extended", e.how, st)
		}
		if focused := eval[string](t, tab, `document.activeElement.id`); focused != "note-text" {
			t.Errorf("after %s the focus is on #%s, want it back on #note-text", e.how, focused)
		}
	}

	waitFor(t, tab, 15*time.Second, "the warning once more", dialogOpen)
	do(t, tab, chromedp.Click(chromedp.CSS("dialog.sessionguard-dialog .sessionguard-secondary")))
	waitFor(t, tab, 5*time.Second, "the sign-in page after Sign out", onLoginPage)
	if q := location(t, tab).Query(); q.Get("reason") != "logout" || q.Get("next") != "/" {
		t.Errorf("signed out to %v, want reason=logout and next=/", location(t, tab))
	}
	if st := s.status(t, cookie); st.Authenticated {
		t.Error("the server still knows the session after Sign out")
	}
}

// Left alone, the session ends on the server and the page goes to the
// sign-in page with the reason and the way back; the page says why. Back
// then shows no private page.
func TestIdleExpiry(t *testing.T) {
	s := startServer(t, shortIdle...)
	tab := newBrowser(t)
	signIn(t, tab, s, "alice")
	open(t, tab, s, "/auth/sessions?sort=recent")
	cookie := cookies(t, tab, s)
	st := s.status(t, cookie)
	end := time.Now().Add(seconds(st.IdleRemaining))

	left := waitFor(t, tab, 20*time.Second, "the sign-in page after the timeout", onLoginPage)
	if left.Before(end.Add(-500 * time.Millisecond)) {
		t.Errorf("the page left %v before the session's end", end.Sub(left))
	}
	if late := left.Sub(end); late > 3*time.Second {
		t.Errorf("the page left %v after the session's end", late)
	}
	q := location(t, tab).Query()
	if q.Get("reason") != "idle" || q.Get("next") != "/auth/sessions?sort=recent" {
		t.Errorf("sent to %v, want reason=idle and next=/auth/sessions?sort=recent", location(t, tab))
	}
	msg := eval[string](t, tab, `(document.querySelector('.ended') || {}).textContent || ''`)
	if !strings.Contains(msg, "10 seconds of inactivity") {
		t.Errorf("the sign-in page says %q, want why the session ended", msg)
	}
	if st := s.status(t, cookie); st.Authenticated || st.Reason != "idle" {
		t.Errorf("the server says %+v, want the session ended for idleness", st)
	}
	screenshot(t, tab, "signed-out-idle")

	eval[bool](t, tab, `history.back(), true`)
	waitFor(t, tab, 10*time.Second, "the Back navigation", `performance.getEntriesByType('navigation')[0].type === 'back_forward' && document.readyState === 'complete'`)
	if path := location(t, tab).Path; path != "/auth/login" {
		t.Errorf("Back after the timeout shows %s, want the sign-in page", path)
	}
	if private := eval[bool](t, tab, `!!document.querySelector('form.signout') || document.body.textContent.includes('Your sessions')`); private {
		t.Error("Back after the timeout shows a private page")
	}
}

// Two tabs share one session: "Stay signed in" in one closes the warning in
// the other, and signing out in one signs out the other, whose Back then
// shows nothing private. Both through BroadcastChannel and, for browsers
// without it, through storage events.
func TestTabsInStep(t *testing.T) {
	for _, channel := range []string{"BroadcastChannel", "storage events"} {
		t.Run(channel, func(t *testing.T) {
			s := startServer(t, shortIdle...)
			a := newBrowser(t)
			b := newTab(t, a)
			if channel == "storage events" {
				for _, tab := range []context.Context{a, b} {
					if _, err := chromedp.Call(tab, page.AddScriptToEvaluateOnNewDocument,
						page.AddScriptToEvaluateOnNewDocumentParams{Source: "delete window.BroadcastChannel"}); err != nil {
						t.Fatal(err)
					}
				}
			}
			signIn(t, a, s, "alice")
			open(t, b, s, "/account")
			cookie := cookies(t, a, s)
			if has := eval[bool](t, b, `typeof BroadcastChannel === 'function'`); has != (channel == "BroadcastChannel") {
				t.Fatalf("BroadcastChannel present: %v", has)
			}

			waitFor(t, a, 15*time.Second, "the warning in tab A", dialogOpen)
			waitFor(t, b, 5*time.Second, "the warning in tab B", dialogOpen)
			do(t, a, chromedp.Click(chromedp.CSS("dialog.sessionguard-dialog .sessionguard-primary")))
			waitFor(t, a, 3*time.Second, "tab A's dialog to close", dialogClosed)
			waitFor(t, b, 2*time.Second, "tab B's dialog to close after Stay signed in in tab A", dialogClosed)
			if st := s.status(t, cookie); st.IdleRemaining <= st.WarnBefore+1 {
				t.Fatalf("after Stay signed in the server says %+v", st)
			}

			// The sign-out button of the page itself, a plain form.
			do(t, a, chromedp.Click(chromedp.CSS("form.signout button")))
			waitFor(t, a, 5*time.Second, "tab A on the sign-in page", onLoginPage)
			waitFor(t, b, 5*time.Second, "tab B on the sign-in page after tab A signed out", onLoginPage)
			if q := location(t, b).Query(); q.Get("reason") != "logout" || q.Get("next") != "/account" {
				t.Errorf("tab B went to %v, want reason=logout and next=/account", location(t, b))
			}
			if msg := eval[string](t, b, `(document.querySelector('.ended') || {}).textContent || ''`); !strings.Contains(msg, "signed out") {
				t.Errorf("tab B's sign-in page says %q", msg)
			}

			eval[bool](t, a, `history.back(), true`)
			waitFor(t, a, 10*time.Second, "the Back navigation", `performance.getEntriesByType('navigation')[0].type === 'back_forward' && document.readyState === 'complete'`)
			if path := location(t, a).Path; path != "/auth/login" || eval[bool](t, a, `!!document.querySelector('form.signout')`) {
				t.Errorf("Back after signing out shows %s, want the sign-in page", path)
			}
		})
	}
}

// A person typing is active although no page loads: the session lives on
// in that tab, and an idle tab beside it neither warns nor signs out.
func TestTypingKeepsEveryTabSignedIn(t *testing.T) {
	s := startServer(t, shortIdle...)
	typing := newBrowser(t)
	signIn(t, typing, s, "alice")
	idle := newTab(t, typing)
	open(t, idle, s, "/")
	cookie := cookies(t, idle, s)
	const sawDialog = `window.sawDialog = false;
		new MutationObserver(() => { if (document.querySelector('dialog.sessionguard-dialog')) window.sawDialog = true; })
			.observe(document.body, {childList: true, subtree: true}); true`
	eval[bool](t, idle, sawDialog)
	eval[bool](t, typing, sawDialog)

	do(t, typing, chromedp.Click(chromedp.ID("note-text")))
	text := "Typing for longer than the idle timeout, one key at a time. "
	end := time.Now().Add(15 * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		do(t, typing, chromedp.KeyEvent(string(text[i%len(text)])))
		time.Sleep(600 * time.Millisecond)
	}
	if got := eval[string](t, typing, `document.getElementById('note-text').value`); !strings.HasPrefix(got, text[:20]) {
		t.Fatalf("the note holds %q: the keys did not reach it", got)
	}
	for _, tab := range []struct {
		name string
		ctx  context.Context
	}{{"the idle tab", idle}, {"the typing tab", typing}} {
		if path := location(t, tab.ctx).Path; path == "/auth/login" {
			t.Errorf("%s was signed out while the person typed", tab.name)
		}
		if eval[bool](t, tab.ctx, `window.sawDialog`) {
			t.Errorf("%s warned of a timeout while the person typed", tab.name)
		}
	}
	if st := s.status(t, cookie); !st.Authenticated || st.IdleRemaining < st.WarnBefore {
		t.Errorf("after typing the server says %+v", st)
	}
}

// What a person typed survives the timeout: it is saved on the server before
// the end, gone from the browser after it, never shown to another user, and
// restored once to the same user after signing in again.
func TestDraftSurvivesTimeout(t *testing.T) {
	s := startServer(t, shortIdle...)
	tab := newBrowser(t)
	signIn(t, tab, s, "alice")
	const draft = "Groceries: oat milk, lemons, rye bread"
	do(t, tab,
		chromedp.Click(chromedp.ID("note-text")),
		chromedp.SendKeys(chromedp.ID("note-text"), draft),
	)

	waitFor(t, tab, 20*time.Second, "the sign-in page after the timeout", onLoginPage)
	if q := location(t, tab).Query(); q.Get("reason") != "idle" || q.Get("next") != "/" {
		t.Errorf("sent to %v, want reason=idle and next=/", location(t, tab))
	}
	left := eval[string](t, tab, `document.documentElement.outerHTML + JSON.stringify(localStorage) + JSON.stringify(sessionStorage)`)
	if strings.Contains(left, "oat milk") {
		t.Fatal("the draft is still readable in the browser after the timeout")
	}

	// Another user on the same browser sees nothing of it.
	signIn(t, tab, s, "bob")
	holds(t, tab, 2*time.Second, "bob's note stays empty",
		`document.getElementById('note-text').value === '' && !document.querySelector('.sessionguard-restored:not(:empty)')`)
	do(t, tab, chromedp.Click(chromedp.CSS("form.signout button")))
	waitFor(t, tab, 5*time.Second, "the sign-in page after bob signs out", onLoginPage)

	// The same user gets it back, once.
	signIn(t, tab, s, "alice")
	waitFor(t, tab, 5*time.Second, "the restored draft",
		`document.getElementById('note-text').value === `+jsString(draft))
	waitFor(t, tab, 2*time.Second, "the notice that the text was restored",
		`((document.querySelector('.sessionguard-restored') || {}).textContent || '').includes('restored')`)
	eval[bool](t, tab, `document.getElementById('note-form').scrollIntoView({block: 'center'}), true`)
	screenshot(t, tab, "draft-restored")
	cookie := cookies(t, tab, s)
	deadline := time.Now().Add(3 * time.Second)
	for {
		var list struct{ Drafts []any }
		if code := s.request(t, "GET", "/auth/drafts?path=/", cookie, true, &list); code != 200 {
			t.Fatalf("GET /auth/drafts: %d", code)
		}
		if len(list.Drafts) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still keeps %d drafts after the restore", len(list.Drafts))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A background tab whose timers did not run catches up as soon as it is
// shown: it asks the server rather than trusting its own schedule.
func TestBackgroundTabCatchesUp(t *testing.T) {
	t.Run("session ended elsewhere", func(t *testing.T) {
		// Long timeouts: nothing in the page is due for a while.
		s := startServer(t, "-idle-timeout", "2m", "-warn-before", "30s")
		tab := newBrowser(t)
		signIn(t, tab, s, "alice")
		cookie := cookies(t, tab, s)
		// The session ends without any tab of this browser knowing.
		if code := s.request(t, "POST", "/auth/logout", cookie, false, nil); code != 303 {
			t.Fatalf("POST /auth/logout: %d", code)
		}
		holds(t, tab, 1500*time.Millisecond, "the hidden tab stays where it was", `location.pathname === '/'`)
		eval[bool](t, tab, `document.dispatchEvent(new Event('visibilitychange')), true`)
		waitFor(t, tab, 3*time.Second, "the sign-in page once the tab is shown", onLoginPage)
		if q := location(t, tab).Query(); q.Get("reason") != "logout" || q.Get("next") != "/" {
			t.Errorf("sent to %v, want reason=logout and next=/", location(t, tab))
		}
	})
	t.Run("frozen past the timeout", func(t *testing.T) {
		s := startServer(t, shortIdle...)
		tab := newBrowser(t)
		signIn(t, tab, s, "alice")
		cookie := cookies(t, tab, s)
		st := s.status(t, cookie)
		// A frozen page runs no timers, as a throttled background tab or a
		// sleeping laptop.
		setLifecycle(t, tab, page.SetWebLifecycleStateStateFrozen)
		time.Sleep(seconds(st.IdleRemaining) + 1500*time.Millisecond)
		if st := s.status(t, cookie); st.Authenticated {
			t.Fatalf("the session outlived its idle timeout: %+v", st)
		}
		setLifecycle(t, tab, page.SetWebLifecycleStateStateActive)
		eval[bool](t, tab, `document.dispatchEvent(new Event('visibilitychange')), true`)
		waitFor(t, tab, 3*time.Second, "the sign-in page once the tab is shown", onLoginPage)
		if q := location(t, tab).Query(); q.Get("reason") != "idle" {
			t.Errorf("sent to %v, want reason=idle", location(t, tab))
		}
	})
}

func setLifecycle(t *testing.T, ctx context.Context, state page.SetWebLifecycleStateState) {
	t.Helper()
	if _, err := chromedp.Call(ctx, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: state}); err != nil {
		t.Fatalf("Page.setWebLifecycleState %s: %v", state, err)
	}
}

// The absolute limit cannot be extended: the page says so early, with no
// "Stay signed in", and the session ends on time however active the person
// is.
func TestAbsoluteLimit(t *testing.T) {
	s := startServer(t, "-idle-timeout", "10s", "-absolute-timeout", "16s", "-warn-before", "6s")
	tab := newBrowser(t)
	signIn(t, tab, s, "alice")
	cookie := cookies(t, tab, s)
	end := time.Now().Add(seconds(s.status(t, cookie).AbsoluteRemaining))

	waitFor(t, tab, 3*time.Second, "the notice of the absolute limit", dialogOpen)
	d := eval[dialogJSON](t, tab, describeDialog)
	if d.Role != "alertdialog" || d.Modal != "true" || !strings.Contains(d.Description, "cannot be extended") {
		t.Errorf("the notice is %+v, want an alert dialog that says the limit cannot be extended", d)
	}
	if strings.Contains(strings.Join(d.Buttons, "|"), "Stay signed in") || d.Focused != d.Buttons[0] {
		t.Errorf("the notice offers %q with the focus on %q", d.Buttons, d.Focused)
	}
	do(t, tab, chromedp.KeyEvent(kb.Escape))
	waitFor(t, tab, 2*time.Second, "the notice to close", dialogClosed)

	// Activity keeps the idle clock young, but not past the limit.
	do(t, tab, chromedp.Click(chromedp.ID("note-text")))
	for time.Now().Before(end.Add(-1500 * time.Millisecond)) {
		do(t, tab, chromedp.KeyEvent("x"))
		time.Sleep(500 * time.Millisecond)
	}
	left := waitFor(t, tab, 6*time.Second, "the sign-in page at the absolute limit", onLoginPage)
	if left.Before(end.Add(-500 * time.Millisecond)) {
		t.Errorf("signed out %v before the absolute limit", end.Sub(left))
	}
	if q := location(t, tab).Query(); q.Get("reason") != "absolute" {
		t.Errorf("sent to %v, want reason=absolute", location(t, tab))
	}
}

// The absolute limit is announced twice: early (absolute_warn_before_s) and
// again a minute before it.
func TestAbsoluteNoticeEarlyAndAgain(t *testing.T) {
	s := startServer(t, "-idle-timeout", "70s", "-absolute-timeout", "75s", "-warn-before", "10s")
	tab := newBrowser(t)
	signIn(t, tab, s, "alice")
	cookie := cookies(t, tab, s)
	st := s.status(t, cookie)
	second := time.Now().Add(seconds(st.AbsoluteRemaining) - time.Minute)

	waitFor(t, tab, 3*time.Second, "the early notice", dialogOpen)
	screenshot(t, tab, "absolute-limit")
	do(t, tab, chromedp.Click(chromedp.CSS("dialog.sessionguard-dialog .sessionguard-primary")))
	waitFor(t, tab, 2*time.Second, "the notice to close", dialogClosed)
	appeared := waitFor(t, tab, time.Until(second)+3*time.Second, "the second notice", dialogOpen)
	if appeared.Before(second.Add(-700 * time.Millisecond)) {
		t.Errorf("the second notice came %v early", second.Sub(appeared))
	}
	if d := eval[dialogJSON](t, tab, describeDialog); !strings.Contains(d.Description, "1 minute") && !strings.Contains(d.Description, "59 seconds") {
		t.Errorf("the second notice says %q", d.Description)
	}
}

// A warning of almost the whole idle timeout shows right after signing in,
// counting down from the time left. (One as long as the idle timeout or
// longer is refused at start: it could never be closed for good.)
func TestWarningFromTheStart(t *testing.T) {
	s := startServer(t, "-idle-timeout", "2m", "-warn-before", "119s")
	tab := newBrowser(t)
	signIn(t, tab, s, "alice")
	waitFor(t, tab, 3*time.Second, "the warning right after signing in", dialogOpen)
	if d := eval[dialogJSON](t, tab, describeDialog); !strings.HasPrefix(d.Countdown, "1 minute 5") && d.Countdown != "2 minutes" {
		t.Errorf("the countdown starts at %q, want about 2 minutes", d.Countdown)
	}
	screenshot(t, tab, "timeout-warning")
}

// Only real input is activity: events a script makes up, and a mouse that
// "moves" without changing position, do not keep a session alive.
func TestSyntheticAndPhantomEventsAreNotActivity(t *testing.T) {
	s := startServer(t, shortIdle...)
	tab := newBrowser(t)
	signIn(t, tab, s, "alice")
	// A first real move sets where the pointer is.
	do(t, tab, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 300, 300))
	const fake = `(() => {
		const note = document.getElementById('note-text');
		for (const e of [new KeyboardEvent('keydown', {key: 'a', bubbles: true}),
			new PointerEvent('pointerdown', {bubbles: true}), new PointerEvent('pointermove', {bubbles: true, screenX: Math.random() * 500}),
			new WheelEvent('wheel', {bubbles: true}), new Event('input', {bubbles: true})]) note.dispatchEvent(e);
		return true;
	})()`
	end := time.Now().Add(20 * time.Second)
	for time.Now().Before(end) {
		if ok, _ := tryEval[bool](tab, onLoginPage); ok {
			break
		}
		tryEval[bool](tab, fake)
		// The same position again: a phantom move.
		c, cancel := context.WithTimeout(tab, 2*time.Second)
		chromedp.Do(c, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 300, 300))
		cancel()
		time.Sleep(300 * time.Millisecond)
	}
	waitFor(t, tab, time.Second, "the sign-in page: made-up events kept the session alive", onLoginPage)
	if q := location(t, tab).Query(); q.Get("reason") != "idle" {
		t.Errorf("sent to %v, want reason=idle", location(t, tab))
	}
}
