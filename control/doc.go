// Package control serves a running app's sessions to its operators over a
// Unix socket, and talks to such a socket.
//
// bbolt lets one process open a file, so while an app holds its session
// database the usersessions command cannot open it. An app that opts in
// serves a control socket beside the file, and the command goes through it
// when it finds the file locked:
//
//	store, err := usersessions.Open("sessions.db", nil)
//	...
//	ctl, err := control.Serve(store, "") // sessions.db.sock
//	...
//	defer ctl.Close() // before store.Close; Shutdown(ctx) lets requests finish
//
// # The protocol
//
// It is HTTP/1.1 over the socket with JSON replies, so curl talks to it as
// well as Client does (the host name in the URL is ignored):
//
//	curl --unix-socket sessions.db.sock http://x/v1/info
//	curl --unix-socket sessions.db.sock 'http://x/v1/sessions?user=alice&state=active'
//	curl --unix-socket sessions.db.sock -X DELETE http://x/v1/users/alice/sessions
//	curl --unix-socket sessions.db.sock -o copy.db http://x/v1/backup
//
// The endpoints:
//
//	GET    /v1/info                  Info: the file, the idle timeout, the count, Stats
//	GET    /v1/sessions              one Session per line (NDJSON), in ID order; query:
//	                                 user, anonymous=true, state=active|expired|any,
//	                                 ip (address or prefix), q (search), after (cursor), limit
//	GET    /v1/sessions/{id}         one Session
//	DELETE /v1/sessions/{id}         end it; query: reason, by (usersessions.EndOptions)
//	DELETE /v1/users/{user}/sessions end the user's sessions; query: keep (an ID), reason, by
//	POST   /v1/clear-expired         remove the expired sessions
//	GET    /v1/check                 {"ok": ..., "problems": [...]}: records against indexes
//	GET    /v1/backup                the whole database file (application/octet-stream)
//
// An unknown query parameter is an error, so a typo never widens a listing.
// Errors are JSON, {"error": "...", "code": "not_found"}, with a status to
// match: 400 "bad_request", 403 "forbidden", 404 "not_found" (no such
// session) or "no_endpoint", 405 "method_not_allowed", 500 "corrupt" or
// "internal", 501 "not_supported", 503 "closed" or "unavailable". A record
// that cannot be read is a line of that form inside a listing, which goes
// on. Client turns the codes back into the package usersessions errors, so
// errors.Is(err, usersessions.ErrNotFound) works across the socket. A
// backup streams from Store.Backup's private copy, so a slow reader holds
// up no write of the app; its last bytes are HTTP trailers,
// X-Usersessions-Size (the bytes sent) or X-Usersessions-Error, which
// Client checks: a copy cut short is an error, never a short file.
//
// # Security
//
// The socket is a file of mode 0600 owned by the app's user: it is bound in
// a private folder (mode 0700), given its mode and checked there, then moved
// into place, so it is never reachable with a wider mode. On Linux the
// server also reads each connection's peer credentials (SO_PEERCRED) and
// answers only a peer running as the socket's owner or as root (403
// otherwise, and when the credentials cannot be read); elsewhere the mode
// of the socket decides. Such a peer can list and end every session, as it
// could by opening the database file; no reply holds a token or a session
// value, except the backup, a copy of the file that peer can read anyway.
//
// Nothing waits forever: a request must arrive within seconds, each write
// of a reply must make progress within seconds (a client that stops
// reading is cut off), idle connections are closed, and a listing reads
// the store page by page outside transactions. A client's calls end with
// their context.
package control
