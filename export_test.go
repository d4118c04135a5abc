package usersessions

import (
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usersessions/usersessions/backend"
)

// OpenBoltBackend opens the embedded backend on the file at path, for the
// backend-level contract suite (storetest.RunBackend), which runs in the
// external test package.
func OpenBoltBackend(path string) (backend.Backend, error) {
	return openBoltBackend(path, time.Second)
}

// CorruptBoltRecord overwrites the stored record of id on the embedded
// backend b with bytes that do not decode, leaving its index entries.
func CorruptBoltRecord(b backend.Backend, id backend.ID) error {
	return b.(*boltBackend).db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).Put(id[:], []byte{0xFF, 1, 2})
	})
}

// BoltPath is the file of the embedded backend b.
func BoltPath(b backend.Backend) string { return b.(*boltBackend).path }
