package usersessions

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Settling a bbolt file at Open: the meta bucket, the schema version, the
// buckets and the idle timeout brought to what this version needs. Open runs
// one pass in a read transaction to learn whether anything differs, and a
// second in a write transaction only if so, so that opening an unchanged
// file never writes to it.

// settler is one settle pass over one transaction.
type settler struct {
	tx      *bolt.Tx
	changes bool // something differs from what this version needs
}

// need notes a change and reports whether to make it: only in a write
// transaction (the read pass just counts).
func (s *settler) need() bool {
	s.changes = true
	return s.tx.Writable()
}

// put stores v under k in bucket unless it is already there.
func (s *settler) put(bucket *bolt.Bucket, k, v []byte) error {
	if bytes.Equal(bucket.Get(k), v) || !s.need() {
		return nil
	}
	return bucket.Put(k, v)
}

// settle runs one pass; it returns the idle timeout in force and whether
// anything differs. A file without the meta bucket stops the read pass early:
// the write pass creates everything.
func (b *boltBackend) settle(tx *bolt.Tx, idle time.Duration) (inForce time.Duration, changes bool, err error) {
	s := &settler{tx: tx}
	meta, err := s.meta()
	if err != nil || meta == nil {
		return 0, s.changes, err
	}
	if err := s.schema(meta); err != nil {
		return 0, false, err
	}
	if err := s.buckets(); err != nil {
		return 0, false, err
	}
	if inForce, err = b.settleIdle(s, meta, idle); err != nil {
		return 0, false, err
	}
	if err := s.count(meta); err != nil {
		return 0, false, err
	}
	return inForce, s.changes, nil
}

// meta returns the meta bucket, creating it (with the schema version) in a
// new, empty file. It returns nil in the read pass over a new file, and
// ErrSchema for a file that holds other data.
func (s *settler) meta() (*bolt.Bucket, error) {
	if meta := s.tx.Bucket(bucketMeta); meta != nil {
		return meta, nil
	}
	empty := true
	s.tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
	if !empty {
		return nil, fmt.Errorf("%w: the file holds other data, not usersessions", ErrSchema)
	}
	if !s.need() {
		return nil, nil
	}
	meta, err := s.tx.CreateBucket(bucketMeta)
	if err != nil {
		return nil, err
	}
	return meta, meta.Put(metaSchema, []byte(strconv.Itoa(schemaVersion)))
}

// schema accepts the current schema version and upgrades version 1 (whose
// layout differs only in what settle adds); any other version is ErrSchema.
func (s *settler) schema(meta *bolt.Bucket) error {
	switch v := string(meta.Get(metaSchema)); v {
	case strconv.Itoa(schemaVersion):
		return nil
	case strconv.Itoa(schemaVersionV1):
		return s.put(meta, metaSchema, []byte(strconv.Itoa(schemaVersion)))
	default:
		return fmt.Errorf("%w: schema version %q, this package reads versions %d and %d", ErrSchema, v, schemaVersionV1, schemaVersion)
	}
}

// buckets creates the buckets the file lacks.
func (s *settler) buckets() error {
	for _, name := range [][]byte{bucketSessions, bucketByUser, bucketByExpiry, bucketHistory, bucketHistoryUntil} {
		if s.tx.Bucket(name) != nil || !s.need() {
			continue
		}
		if _, err := s.tx.CreateBucket(name); err != nil {
			return err
		}
	}
	return nil
}

// settleIdle settles the idle timeout in force (idle, or the stored one when
// idle < 0) and stores it. Expiry keys depend on the idle timeout: if it
// changed since the file was last opened, they are recomputed so cleanup
// stays exact.
func (b *boltBackend) settleIdle(s *settler, meta *bolt.Bucket, idle time.Duration) (time.Duration, error) {
	old := meta.Get(metaIdle)
	inForce := idle
	if idle < 0 {
		stored, _ := strconv.ParseInt(string(old), 10, 64)
		inForce = time.Duration(max(stored, 0))
	}
	b.idle = inForce // rebuildExpiryIndex reads it
	want := []byte(strconv.FormatInt(int64(inForce), 10))
	if old != nil && !bytes.Equal(old, want) && s.need() {
		if err := b.rebuildExpiryIndex(s.tx); err != nil {
			return 0, err
		}
	}
	return inForce, s.put(meta, metaIdle, want)
}

// count stores the session count when the file has none yet (files written
// before it was kept).
func (s *settler) count(meta *bolt.Bucket) error {
	if meta.Get(metaCount) != nil || !s.need() {
		return nil
	}
	if sessions := s.tx.Bucket(bucketSessions); sessions != nil {
		return meta.Put(metaCount, binary.AppendVarint(nil, int64(sessions.Stats().KeyN)))
	}
	return nil
}
