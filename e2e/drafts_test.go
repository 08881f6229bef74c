package e2e

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A draft keeps what a person wrote and none of the secrets in the same
// form: the script leaves out the fields it knows to be secret, and sends
// the marks of the others (type, autocomplete, data-sessionguard-sensitive)
// so that the server drops, by name and by mark, what the script kept.
func TestDraftKeepsNoSecrets(t *testing.T) {
	// The warning, which saves the form, 5 seconds after the last input,
	// and the session alive long after it for the checks.
	s := startServer(t, "-idle-timeout", "1m", "-warn-before", "55s")
	tab := newBrowser(t)
	signIn(t, tab, s, "alice")
	eval[bool](t, tab, `(() => {
		const f = document.getElementById('note-form');
		f.insertAdjacentHTML('beforeend',
			'<input name="city" value="Lyon" aria-label="City">' +
			'<input name="answer" value="Rex, my first pet" data-sessionguard-sensitive aria-label="Answer">' +
			'<input name="recovery" value="hunter2" autocomplete="new-password" aria-label="Recovery">' +
			'<input name="card_number" value="4111111111111111" aria-label="Card">' +
			'<input name="pw" type="password" value="swordfish" aria-label="Password">');
		return true;
	})()`)
	do(t, tab,
		chromedp.Click(chromedp.ID("note-text")),
		chromedp.SendKeys(chromedp.ID("note-text"), "call the bank"),
	)
	waitFor(t, tab, 30*time.Second, "the warning, when the form is saved", dialogOpen)

	cookie := cookies(t, tab, s)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list struct {
			Drafts []struct{ Fields map[string]string }
		}
		if code := s.request(t, "GET", "/auth/drafts?path=/", cookie, true, &list); code != 200 {
			t.Fatalf("GET /auth/drafts: %d", code)
		}
		if len(list.Drafts) == 1 {
			got := slices.Sorted(maps.Keys(list.Drafts[0].Fields))
			if want := []string{"city", "note"}; !slices.Equal(got, want) {
				t.Errorf("the server keeps the fields %q, want %q", got, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server has %d drafts, want the note form's", len(list.Drafts))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
