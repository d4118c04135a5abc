package usersessions

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/usersessions/usersessions/backend"
	bolt "go.etcd.io/bbolt"
)

// Secondary indexes. Both are kept in the same transaction as the records
// they point at, so they can never disagree after a crash; Check proves it.
//
// By user: key = uvarint(len(user)) || user || ID, empty value. The length
// prefix makes a user's keys one exact, contiguous prefix (without it "ann"
// would also match "anne"), so listing or deleting one user's sessions seeks
// once and reads only that user's keys. Anonymous sessions are not indexed.
//
// By expiry: key = big-endian deadline in Unix nanoseconds || ID, empty value.
// Keys sort by deadline, so cleanup starts at the front and stops at the
// first key in the future: it visits only what has expired. The deadline is
// the one computed from the record as stored (ExpiresAt, or LastSeen plus
// IdleTimeout when that is sooner); flushing activity moves the entry.

var (
	bucketSessions = []byte("sessions")
	bucketByUser   = []byte("by_user")
	bucketByExpiry = []byte("by_expiry")
	bucketMeta     = []byte("meta")

	// History (Options.History): entries by user, key = userPrefix ||
	// big-endian end time || ID, value = encodeEnded; and by the time
	// they go, key = big-endian "keep until" || the by-user key, so
	// cleanup walks only what is due, as for sessions.
	bucketHistory      = []byte("history")
	bucketHistoryUntil = []byte("history_until")
)

func userPrefix(userID string) []byte {
	p := binary.AppendUvarint(make([]byte, 0, len(userID)+binary.MaxVarintLen64+idBytes), uint64(len(userID)))
	return append(p, userID...)
}

func userKey(userID string, id backend.ID) []byte {
	return append(userPrefix(userID), id[:]...)
}

// splitUserKey returns the user and ID of a by_user key.
func splitUserKey(k []byte) (user string, id backend.ID, ok bool) {
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) != n+uint64(idBytes) {
		return "", id, false
	}
	copy(id[:], k[w+int(n):])
	return string(k[w : w+int(n)]), id, true
}

func expiryKey(deadline int64, id backend.ID) []byte {
	k := make([]byte, 8+idBytes)
	binary.BigEndian.PutUint64(k, uint64(max(deadline, 0)))
	copy(k[8:], id[:])
	return k
}

func splitExpiryKey(k []byte) (deadline int64, id backend.ID, ok bool) {
	if len(k) != 8+idBytes {
		return 0, id, false
	}
	copy(id[:], k[8:])
	return int64(binary.BigEndian.Uint64(k)), id, true
}

// indexes bundles the buckets a write touches, opened once per transaction.
type indexes struct {
	sessions, byUser, byExpiry, meta *bolt.Bucket
	history, historyUntil            *bolt.Bucket
	idle                             time.Duration
	added                            *int64 // records added minus removed in this transaction
}

func openIndexes(tx *bolt.Tx, idle time.Duration) indexes {
	return indexes{
		sessions: tx.Bucket(bucketSessions),
		byUser:   tx.Bucket(bucketByUser),
		byExpiry: tx.Bucket(bucketByExpiry),
		meta:     tx.Bucket(bucketMeta),
		history:  tx.Bucket(bucketHistory),

		historyUntil: tx.Bucket(bucketHistoryUntil),
		idle:         idle,
		added:        new(int64),
	}
}

// The number of records is kept in the meta bucket, so Count is one read
// instead of a walk over every page of the sessions bucket.

func (ix indexes) count() int64 {
	v, _ := binary.Varint(ix.meta.Get(metaCount))
	return v
}

// saveCount writes the count as changed by this transaction's puts and
// removes; every write transaction calls it before committing.
func (ix indexes) saveCount() error {
	if *ix.added == 0 {
		return nil
	}
	err := ix.meta.Put(metaCount, binary.AppendVarint(nil, ix.count()+*ix.added))
	*ix.added = 0
	return err
}

// get decodes the record of id, or returns nil when there is none.
func (ix indexes) get(id backend.ID, withValues bool) (*backend.Record, error) {
	data := ix.sessions.Get(id[:])
	if data == nil {
		return nil, nil
	}
	r, err := decodeRecordOf(&id, data, withValues)
	if err != nil {
		return nil, err
	}
	return &r.Record, nil
}

// put writes r under id and moves its index entries from old (nil for a new
// record) to where r needs them.
func (ix indexes) put(id backend.ID, old, r *backend.Record) error {
	if old != nil {
		if old.UserID != r.UserID && old.UserID != "" {
			if err := ix.byUser.Delete(userKey(old.UserID, id)); err != nil {
				return err
			}
		}
		if od, nd := old.Deadline(ix.idle), r.Deadline(ix.idle); od != nd {
			if err := ix.byExpiry.Delete(expiryKey(od, id)); err != nil {
				return err
			}
		}
	}
	if r.UserID != "" && (old == nil || old.UserID != r.UserID) {
		if err := ix.byUser.Put(userKey(r.UserID, id), nil); err != nil {
			return err
		}
	}
	if old == nil || old.Deadline(ix.idle) != r.Deadline(ix.idle) {
		if err := ix.byExpiry.Put(expiryKey(r.Deadline(ix.idle), id), nil); err != nil {
			return err
		}
	}
	if old == nil {
		*ix.added++
	}
	return ix.sessions.Put(id[:], encodeRecord(nil, r))
}

// remove deletes the record r of id and its index entries.
func (ix indexes) remove(id backend.ID, r *backend.Record) error {
	if r.UserID != "" {
		if err := ix.byUser.Delete(userKey(r.UserID, id)); err != nil {
			return err
		}
	}
	if err := ix.byExpiry.Delete(expiryKey(r.Deadline(ix.idle), id)); err != nil {
		return err
	}
	*ix.added--
	return ix.sessions.Delete(id[:])
}

// removeDamaged deletes the record of id, whose header cannot be decoded,
// and every index entry that points at it. Without the record's user and
// deadline it finds those entries by their ID suffix: a scan of both
// indexes, a cost paid for damage only, so that revocation never depends
// on a record being readable.
func (ix indexes) removeDamaged(id backend.ID) error {
	for _, b := range []*bolt.Bucket{ix.byUser, ix.byExpiry} {
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) >= idBytes && bytes.Equal(k[len(k)-idBytes:], id[:]) {
				keys = append(keys, bytes.Clone(k))
			}
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	*ix.added--
	return ix.sessions.Delete(id[:])
}

// ended records r, which just ended as e says, in the history (nothing
// when e keeps no history or r has no user).
func (ix indexes) ended(r *backend.Record, e backend.Ending) error {
	if e.Keep <= 0 || r.UserID == "" {
		return nil
	}
	key := binary.BigEndian.AppendUint64(userPrefix(r.UserID), uint64(max(e.At, 0)))
	key = append(key, r.ID[:]...)
	until := backend.AddNanos(e.At, e.Keep)
	if err := ix.history.Put(key, encodeEnded(nil, r, e, until)); err != nil {
		return err
	}
	return ix.historyUntil.Put(append(binary.BigEndian.AppendUint64(nil, uint64(max(until, 0))), key...), nil)
}

// historyOf returns userID's history entries, oldest first, and the
// errors of the entries it skipped because they cannot be decoded (one
// damaged entry must not hide the rest, nor fail a sessions page).
func (ix indexes) historyOf(userID string) (out []backend.EndedRecord, damaged []error) {
	prefix := userPrefix(userID)
	c := ix.history.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != len(prefix)+8+idBytes {
			continue
		}
		e, _, err := decodeEnded(backend.ID(k[len(k)-idBytes:]), v)
		if err != nil {
			damaged = append(damaged, fmt.Errorf("history of %q, entry %x: %w", userID, k, err))
			continue
		}
		e.EndedAt = int64(binary.BigEndian.Uint64(k[len(prefix):]))
		out = append(out, e)
	}
	return out, damaged
}

// purgeHistory removes history entries kept until now or before, at most
// limit of them, and reports whether it stopped at the limit.
func (ix indexes) purgeHistory(now int64, limit int) (more bool, err error) {
	var due [][]byte
	c := ix.historyUntil.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) < 8 || int64(binary.BigEndian.Uint64(k)) > max(now, 0) {
			break
		}
		if len(due) >= limit {
			more = true
			break
		}
		due = append(due, bytes.Clone(k))
	}
	for _, k := range due {
		if err := ix.history.Delete(k[8:]); err != nil {
			return false, err
		}
		if err := ix.historyUntil.Delete(k); err != nil {
			return false, err
		}
	}
	return more, nil
}

// userIDs returns the IDs of userID's sessions from the user index.
func (ix indexes) userIDs(userID string) []backend.ID {
	prefix := userPrefix(userID)
	var ids []backend.ID
	c := ix.byUser.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) == len(prefix)+idBytes {
			ids = append(ids, backend.ID(k[len(prefix):]))
		}
	}
	return ids
}
