package usersessions_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/usersessions/usersessions"
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
