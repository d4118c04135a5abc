package usersessions_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// outsideBackend is a Backend from outside this module: the embedded one
// behind an interface (so none of its own extras show), plus the optional
// interfaces a Store detects.
type outsideBackend struct {
	backend.Backend
	commits uint64
}

func (o *outsideBackend) Commits() uint64 { return o.commits }
func (o *outsideBackend) String() string  { return "outside storage" }

// bareBackend offers none of the optional interfaces.
type bareBackend struct{ backend.Backend }

func newOutside(t *testing.T) backend.Backend {
	b, err := usersessions.OpenBoltBackend(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOptionalInterfacesFromOutside checks that a Backend outside this
// module can provide what the Store detects: backend.Committer for
// Stats.Commits and fmt.Stringer for the name; without io.WriterTo,
// Backup is ErrNotSupported.
func TestOptionalInterfacesFromOutside(t *testing.T) {
	s, err := usersessions.NewStore(&outsideBackend{Backend: newOutside(t), commits: 42}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Stats().Commits; got != 42 {
		t.Errorf("Stats().Commits = %d, want the Backend's Commits() (42)", got)
	}
	if !strings.Contains(s.String(), "outside storage") {
		t.Errorf("String() = %q, want the Backend's name", s.String())
	}
	if _, err := s.Backup(&bytes.Buffer{}); !errors.Is(err, usersessions.ErrNotSupported) {
		t.Errorf("Backup without io.WriterTo = %v, want ErrNotSupported", err)
	}

	bare, err := usersessions.NewStore(bareBackend{newOutside(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if _, err := bare.Create(context.Background(), "alice", usersessions.Client{}); err != nil {
		t.Fatal(err)
	}
	if got := bare.Stats().Commits; got != 0 {
		t.Errorf("Stats().Commits without a Committer = %d, want 0", got)
	}
}
