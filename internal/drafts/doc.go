// Package drafts keeps the unsaved contents of web forms on the server for a
// while, so that a person whose session times out loses nothing (WCAG 2.2.5,
// Re-authenticating): /auth/timeout.js saves a marked form shortly before the
// idle end, while the session is still valid, and fills it in again after the
// same user signs in.
//
// A draft belongs to one user, one page path and one form on that page. It
// expires after a day (Options.TTL) and is never shown to anyone else. The
// browser keeps no copy: the unattended device is the threat a timeout
// protects against, so the text lives only here until it is restored.
//
// Secrets are never kept. Save drops every field that holds one, whatever
// the client sent: fields named like passwords, PINs, card numbers, card
// security codes, one-time codes, tokens and secrets, and fields the page
// marks as such (an input of type password, an autocomplete token such as
// cc-number, cc-csc, one-time-code or new-password, or the attribute
// data-sessionguard-sensitive), which the script sends along as marks. The
// rule is Sensitive. The script itself does not send the fields it knows
// to be secret, but the server does not rely on that.
//
// Store keeps drafts in a sqldb database (SQLite or PostgreSQL, table
// drafts); Handler is its JSON face at /auth/drafts:
//
//	GET    /auth/drafts?path=/                   the user's drafts of that page
//	POST   /auth/drafts                          {"form":"note-form","path":"/","fields":{"note":"..."},"marks":{"note":"..."}}
//	DELETE /auth/drafts?path=/&form=note-form
//
// Every request through Handler is passive: saving a draft in the background
// never keeps a session alive.
package drafts
