package backend

// Optional features. A Store checks its Backend for these interfaces with
// a type assertion, so a Backend outside this module can offer each of
// them by implementing it; without one, the Store does without.
//
//   - Committer: Stats.Commits reports the Backend's commit count (0
//     without it).
//   - io.WriterTo: Store.Backup writes a consistent copy of the whole
//     storage with WriteTo, while the Store keeps serving; without it
//     Backup returns usersessions.ErrNotSupported (use the database's own
//     tools).
//   - fmt.Stringer: the Store names the storage in its logs and its own
//     String by it (the embedded backend: the file's path).

// Committer is a Backend that counts its durable commits (one commit may
// carry many writes: see the group commit), for Stats.Commits.
type Committer interface {
	Commits() uint64
}
