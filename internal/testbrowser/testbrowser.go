// Package testbrowser starts the headless Chromium that the browser tests
// drive, and gives it a virtual passkey authenticator. It is for tests only.
package testbrowser

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// SkipNoChromium is the message of a test skipped for want of a browser.
// CI turns a skip that names chromium into a failure.
const SkipNoChromium = "chromium not found: install it (apt-get install chromium) to run the browser tests"

// Find returns the browser to drive: $SESSIONGUARD_CHROMIUM, else Debian's
// chromium, else a Chrome on the PATH; "" if there is none.
func Find() string {
	if p := os.Getenv("SESSIONGUARD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts a fresh headless Chromium at path with an empty profile and
// returns the context of its first tab; it closes with the test. It skips
// the test when path is "". The flags keep Chromium from reaching out to
// Google's services, which this machine's closed network refuses.
func New(t *testing.T, path string) context.Context {
	t.Helper()
	if path == "" {
		t.Skip(SkipNoChromium)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 720),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser, which lives as long as the context
	// of that run: it takes no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// AddAuthenticator gives the tab, on the page it shows, a virtual platform
// authenticator that keeps discoverable passkeys and verifies the user (as
// a fingerprint reader would), answering every request at once. It returns
// the authenticator's ID, for the WebAuthn domain's other commands.
func AddAuthenticator(t *testing.T, tab context.Context) webauthn.AuthenticatorID {
	t.Helper()
	if _, err := chromedp.Call(tab, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	res, err := chromedp.Call(tab, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   webauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return res.AuthenticatorID
}
