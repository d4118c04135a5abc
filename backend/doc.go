// Package backend is what a storage backend for usersessions implements:
// it is to usersessions what database/sql/driver is to database/sql. An
// app author never needs it; usersessions.Open and usersessions.NewStore
// are the app's entry points.
//
// A usersessions.Store is the session rules — tokens and their hashes, the
// cache and its generations, in-memory activity, deadlines, values — over
// a Backend that keeps records durable and indexed. usersessions.Open
// gives a Store on the embedded bbolt backend; usersessions.NewStore takes
// any Backend, such as package pgstore's PostgreSQL one for apps that run
// more than one instance.
//
// A Backend only stores: it never decides whether a session is alive or a
// token is right. Each method is one atomic, durable step (a record and
// its index entries change together or not at all), and when a method
// returns, its change is durable and visible to every later call on any
// instance.
//
// What a backend author writes:
//
//   - a type implementing Backend (and SharedBackend when several
//     processes share the storage: the Store then keeps its cache coherent
//     through the ChangeFeed it subscribes);
//   - errors that wrap ErrNotFound, ErrCorrupt, ErrUnavailable, ErrClosed
//     and ErrSchema where the methods say so (usersessions re-exports the
//     same values, so errors.Is works with either name);
//   - optionally, the interfaces in optional.go that the Store detects:
//     Committer (Stats.Commits), io.WriterTo (Store.Backup) and
//     fmt.Stringer (the name in logs).
//
// Package storetest holds the contract suite: storetest.RunBackend drives
// a Backend directly, storetest.Run drives a Store over it. A backend that
// passes both keeps every promise the Store makes.
package backend
