// Package pgstore is a PostgreSQL usersessions.Backend for apps that run
// more than one instance over one database.
//
//	b, err := pgstore.Open(ctx, "postgres://app@db/app", nil)
//	...
//	store, err := usersessions.NewStore(b, &usersessions.Options{...})
//
// Every instance opens the same database (and Table); each Store keeps its
// own cache and hears of the others' changes through LISTEN/NOTIFY (see
// Backend.Subscribe).
//
// # Schema
//
// Open creates, idempotently and safely when several instances start at
// once (under an advisory lock), one table:
//
//	id bytea PRIMARY KEY, hash bytea, user_id text, ip inet, user_agent text,
//	created, last_seen, expires, deadline bigint (Unix ns), identity bigint,
//	vals bytea
//
// with indexes on (user_id, id), (deadline, id) and a GiST inet_ops index on
// ip, and a settings table (Table + "_settings") holding the schema version
// and the idle timeout the last Open stored.
//
// # Change notices
//
// Update, Delete, DeleteByUser and DeleteExpired send the IDs they changed
// with pg_notify on the channel Table + "_changes", in the same
// transaction, so a notice is sent if and only if the change committed.
// Create and Touch send none: a new session is in no other instance's
// cache, and activity is not a revocation (NOTIFY also takes a
// cluster-wide lock at commit, which the hottest writes should not pay).
//
// # Durability
//
// pgstore never changes synchronous_commit: with PostgreSQL's default (on),
// a method that returned has its change on disk.
package pgstore
