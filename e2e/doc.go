// Package e2e holds sessionguard's end-to-end tests: the real server binary,
// built from ./cmd/sessionguard and started as a process with short real
// timeouts, driven by a real headless Chromium through chromedp. They prove
// the browser side of timeouts: the warning dialog and its
// accessibility, "Stay signed in", tabs in step, expiry and the sign-in
// page's reason, Back after sign-out, drafts that survive a timeout, and
// background tabs that catch up; and, through a real nginx in front of an
// application that knows nothing of sessions, the same warning dialog and
// "Stay signed in" on the application's own pages. Every page and both
// timeout dialogs pass axe-core's WCAG 2.2 A and AA rules in the light and
// the dark colour scheme (axe-core is vendored in testdata, see its
// README.md), and drafts keep no secrets.
//
// Run them with
//
//	go test ./e2e
//
// They need Chromium (apt-get install chromium; SESSIONGUARD_CHROMIUM names
// another binary) and skip with a message naming it when none is found.
// With SESSIONGUARD_SCREENSHOTS=1 they also write the screenshots in
// docs/screenshots.
package e2e
