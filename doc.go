// Package usersessions stores HTTP sessions as first-class records that a
// person can see and control: every session knows its user, device, address
// and last activity, so an application can list "your active sessions", end
// one of them, end all others, or log a user out everywhere.
//
// # Start here
//
// Open a Store, create a session at sign-in, load it on every request:
//
//	store, err := usersessions.Open("sessions.db", nil) // nil Options: the defaults
//	defer store.Close()
//
//	client := usersessions.Client{IP: ip, UserAgent: r.UserAgent()}
//	sess, err := store.Create(ctx, "alice", client) // at sign-in
//	// put sess.Token in an HttpOnly cookie; on later requests:
//	sess, err = store.LoadTouch(ctx, token, client) // errors.Is(err, usersessions.ErrNotFound): anonymous
//	sess.Set("theme", "dark")
//	err = store.Save(ctx, sess)
//
// Show and end sessions, the reason this package exists:
//
//	list, err := store.ListByUser(ctx, "alice")                                // her active sessions
//	err = store.EndForUser(ctx, "alice", id, usersessions.EndOptions{})       // end one, only if it is hers
//	n, err := store.EndUser(ctx, "alice", sess.ID, usersessions.EndOptions{}) // end every other one
//
// End, EndForUser and EndUser are the one way to end sessions; the zero
// EndOptions records the default reason, and EndOptions says another one
// and who ended it (History, Hooks.Ended).
//
// # What to read next
//
//   - Store: the session verbs (Create, Load, LoadTouch, Save, Rotate,
//     RotateUser, End..., ListByUser, All, History, CredentialsChanged).
//   - Session and Value: one session and its typed values.
//   - Options, with Privacy, Hooks and History: lifetimes, idle timeout,
//     cache, per-user limits, what is kept of a client.
//   - Filter and Stats: admin listings and counters.
//   - The errors (ErrNotFound, ErrConflict, ErrUnavailable, ...), for
//     errors.Is.
//   - Device and Geo: "Chrome on Windows", "Berlin, Germany" for the views.
//
// A session is addressed two ways: its Token is the secret that goes in the
// cookie (only a SHA-256 hash of it is stored, so a stolen database file
// lets nobody in), and its ID is a public, stable handle, safe to show and
// to put in URLs, that never grants access: it is what "end this session"
// buttons carry.
//
// By default the Store is embedded: Open keeps sessions in one bbolt file,
// with indexes by user and by expiry kept in the same transaction, and a
// ristretto cache in front for the hot load path. NewStore runs the same
// rules over any Backend, such as package pgstore's PostgreSQL one for
// apps that run several instances; package backend is what a backend
// author implements, and package storetest the contract it must pass.
//
// Package httpx wraps all of this as net/http middleware and views.
package usersessions
