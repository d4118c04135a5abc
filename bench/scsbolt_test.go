package bench

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	bolt "go.etcd.io/bbolt"
)

// scsBoltStore is an scs.Store over bbolt, written here because scs's own
// boltstore is not on the module proxy. It follows that store's layout: one
// bucket, key = token, value = expiry (8 bytes, big-endian Unix
// nanoseconds) followed by the encoded session.
type scsBoltStore struct {
	db *bolt.DB
}

var scsBucket = []byte("scs.sessions")

var _ scs.Store = (*scsBoltStore)(nil)

func openSCSBolt(path string) (*scsBoltStore, error) {
	// The same bbolt options as usersessions, so the file layer is equal.
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(scsBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &scsBoltStore{db: db}, nil
}

func (s *scsBoltStore) Close() error { return s.db.Close() }

// Find returns a copy of the data of token, unless it is missing or expired.
func (s *scsBoltStore) Find(token string) (b []byte, found bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(scsBucket).Get([]byte(token))
		if len(v) < 8 {
			return nil
		}
		if time.Now().UnixNano() >= int64(binary.BigEndian.Uint64(v)) {
			return nil // expired
		}
		b, found = bytes.Clone(v[8:]), true
		return nil
	})
	return b, found, err
}

// Commit stores data under token until expiry, durably.
func (s *scsBoltStore) Commit(token string, data []byte, expiry time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(scsBucket).Put([]byte(token), scsValue(data, expiry))
	})
}

// commitMany stores many sessions in one transaction. Only fixtures use it:
// building a thousand sessions with one fsync each would dominate setup.
func (s *scsBoltStore) commitMany(tokens []string, data [][]byte, expiry time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(scsBucket)
		for i, t := range tokens {
			if err := bk.Put([]byte(t), scsValue(data[i], expiry)); err != nil {
				return err
			}
		}
		return nil
	})
}

func scsValue(data []byte, expiry time.Time) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(data)), uint64(expiry.UnixNano()))
	return append(v, data...)
}

// Delete removes token; a missing token is not an error.
func (s *scsBoltStore) Delete(token string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(scsBucket).Delete([]byte(token))
	})
}

// TestSCSBoltStore checks that the scs store round-trips a session through
// scs's own Commit and Load, expires, and deletes.
func TestSCSBoltStore(t *testing.T) {
	st, err := openSCSBolt(filepath.Join(t.TempDir(), "scs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sm := scs.New()
	sm.Store = st

	ctx, err := sm.Load(bg, "")
	if err != nil {
		t.Fatal(err)
	}
	sm.Put(ctx, "userID", "alice")
	token, _, err := sm.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err = sm.Load(bg, token)
	if err != nil {
		t.Fatal(err)
	}
	if got := sm.GetString(ctx, "userID"); got != "alice" {
		t.Fatalf("loaded userID %q, want alice", got)
	}

	if err := st.Commit("old", []byte("x"), time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, found, err := st.Find("old"); found || err != nil {
		t.Fatalf("expired session: found=%v err=%v", found, err)
	}
	if err := st.Delete(token); err != nil {
		t.Fatal(err)
	}
	if _, found, err := st.Find(token); found || err != nil {
		t.Fatalf("deleted session: found=%v err=%v", found, err)
	}
	if err := st.Delete("missing"); err != nil {
		t.Fatalf("deleting a missing token: %v", err)
	}
}
