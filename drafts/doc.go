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
// Store keeps drafts in a sqldb database (SQLite or PostgreSQL, table
// drafts); Handler is its JSON face at /auth/drafts:
//
//	GET    /auth/drafts?path=/                   the user's drafts of that page
//	POST   /auth/drafts                          {"form":"note-form","path":"/","fields":{"note":"..."}}
//	DELETE /auth/drafts?path=/&form=note-form
//
// Every request through Handler is passive: saving a draft in the background
// never keeps a session alive.
package drafts
