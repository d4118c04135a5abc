package usersessions

import "github.com/usersessions/usersessions/backend"

// Backend is the storage under a Store: see NewStore, and package backend
// for what one implements. Open uses the embedded bbolt one.
type Backend = backend.Backend
