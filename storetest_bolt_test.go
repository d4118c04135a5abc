package usersessions_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/storetest"
)

// TestContract runs the backend contract suite on the embedded bbolt file.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts *usersessions.Options) *usersessions.Store {
		s, err := usersessions.Open(filepath.Join(t.TempDir(), "sessions.db"), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Check(context.Background()); err != nil && !errors.Is(err, usersessions.ErrClosed) {
				t.Errorf("Check after the test: %v", err)
			}
			s.Close()
		})
		return s
	})
}

// TestBackendContract runs the backend-level contract suite on the
// embedded bbolt backend.
func TestBackendContract(t *testing.T) {
	open := func(t *testing.T, path string) backend.Backend {
		b, err := usersessions.OpenBoltBackend(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	storetest.RunBackend(t, storetest.Backend{
		Open: func(t *testing.T) backend.Backend {
			return open(t, filepath.Join(t.TempDir(), "sessions.db"))
		},
		Reopen: func(t *testing.T, b backend.Backend) backend.Backend {
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, usersessions.BoltPath(b))
		},
		Corrupt: func(t *testing.T, b backend.Backend, id backend.ID) {
			if err := usersessions.CorruptBoltRecord(b, id); err != nil {
				t.Fatal(err)
			}
		},
		ExactScan: false, // the IP filter is left to the Store
	})
}
