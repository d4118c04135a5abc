package usersessions

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// FuzzVerifyBoltFile damages a real database file (one byte changed, and
// optionally the file cut short) and checks the promise of bolt_verify.go:
// a file verifyBoltFile accepts can be opened and read by bbolt, its
// open-time walk and its own Check included, without a panic or a fault.
// A fault here would end the fuzzing process, which go test reports.
func FuzzVerifyBoltFile(f *testing.F) {
	dir := f.TempDir()
	fixture := filepath.Join(dir, "fixture.db")
	s, err := Open(fixture, &Options{CleanupInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 120 {
		sess, err := s.Create(ctx, []string{"alice", "bob", ""}[i%3], clientA)
		if err != nil {
			f.Fatal(err)
		}
		if i%4 == 0 {
			sess.Set("k", bytes.Repeat([]byte{byte(i)}, i*3))
			s.Save(ctx, sess)
		}
	}
	s.Close()
	good, err := os.ReadFile(fixture)
	if err != nil {
		f.Fatal(err)
	}
	for _, off := range []uint32{0, 20, 4096 + 20, 2 * 4096, 2*4096 + 10, 3*4096 + 16, 3*4096 + 40, 5 * 4096} {
		f.Add(off, byte(0xff), uint32(0))
	}
	f.Add(uint32(3*4096), byte(1), uint32(4*4096))
	path := filepath.Join(dir, "damaged.db")
	f.Fuzz(func(t *testing.T, off uint32, xor byte, cut uint32) {
		data := bytes.Clone(good)
		data[int(off)%len(data)] ^= xor
		if cut > 0 {
			data = data[:int(cut)%len(data)]
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if verifyBoltFile(path) != nil {
			return
		}
		db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
		if err != nil {
			return // a clean error is fine
		}
		defer db.Close()
		db.View(func(tx *bolt.Tx) error {
			// Check may report damage (one meta page may be bad: bbolt
			// uses the other); it must not panic outside its recover.
			for range tx.Check() {
			}
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				return b.ForEach(func(k, v []byte) error { return nil })
			})
		})
	})
}
