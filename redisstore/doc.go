// Package redisstore is a Redis (or Valkey) usersessions.Backend for apps
// that run more than one instance, built on github.com/redis/rueidis.
//
//	b, err := redisstore.Open(ctx, "redis://cache.internal:6379", nil)
//	...
//	store, err := usersessions.NewStore(b, &usersessions.Options{...})
//
// Every instance opens the same server (and Prefix); each Store keeps its
// own cache and hears of the others' changes through notices published by
// the scripts that make them (see Backend.Subscribe). A Redis Cluster
// works as well: every script touches one hash slot.
//
// # Layout
//
// A user's records, the index of them and their history share one hash
// tag, so each change of a user's sessions is one Lua script on one slot,
// atomic: a per-user list never goes stale. An anonymous session is a
// group of its own. A locator per session says which group holds it (Load
// knows only the ID); a move between groups (a sign-in) goes through it.
// No request path runs KEYS or SCAN: cleanup reads only the groups with
// something due. The key layout is described in keys.go, the moves in
// move.go, cleanup in expire.go, and the design in docs/design.md.
//
// # Durability
//
// A change is as durable as the server makes it. Run Redis either with
// appendonly yes and appendfsync always (a call that returned survives a
// crash) or with no persistence at all (a restart signs everyone out,
// which is safe). Snapshots alone, or appendfsync everysec, can bring a
// session revoked shortly before a crash back to life: Open logs a warning
// when it can read such a configuration. A restart always passes through
// the change feed's Lost and Restored, so no Store serves a session from
// its cache that the restarted server no longer has.
package redisstore
