// Package gateway puts sessionguard's sign-in and timeouts in front of web
// applications that know nothing of them, in two ways:
//
//   - Forward auth: a proxy (nginx auth_request, Caddy forward_auth, Traefik
//     ForwardAuth) asks GET /auth/gate/auth-request or
//     /auth/gate/forward-auth about each request, and the answer says whether
//     it may pass, who the user is (Remote-User, Remote-Groups) and how long
//     the session has left.
//   - Reverse proxy: sessionguard itself forwards the requests of signed-in
//     users to the application (Config.Upstream), with the same decision,
//     and inserts the timeout script into the application's pages.
//
// What sets it apart is what counts as activity. A check extends the idle
// clock only for what a person did: a page navigation or an unsafe method
// (a form post, an edit). Background fetches, images, scripts, polls,
// prefetches, requests marked "Session-Activity: passive" and the paths of
// Config.PassivePaths never do, so an open tab that polls does not keep an
// unattended session alive. The timeout script reports real keyboard and
// pointer activity for a person who reads a long page without navigating.
package gateway
