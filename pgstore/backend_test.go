package pgstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/storetest"
)

func TestOpenRejectsUnsafeTableNames(t *testing.T) {
	for _, name := range []string{"Users", "a-b", "x; DROP TABLE y", "1abc", `"q"`, strings.Repeat("a", 41)} {
		if _, err := Open(ctxT(t), "host=/nonexistent", &Options{Table: name}); err == nil || !strings.Contains(err.Error(), "table name") {
			t.Errorf("table %q: err %v, want a table name error", name, err)
		}
	}
}

func TestOpenUnreachableIsUnavailable(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(ctxT(t), "host="+dir+" port=5432 user=postgres connect_timeout=2", nil)
	if !errors.Is(err, usersessions.ErrUnavailable) {
		t.Fatalf("Open on a missing server: %v, want ErrUnavailable", err)
	}
}

func TestCheckFindsProblems(t *testing.T) {
	e := sharedEnv(t)
	b := e.open(t, time.Hour, nil)
	ctx := ctxT(t)
	rs := []*backend.Record{rec("a", 0, 2*time.Hour), rec("b", 0, 2*time.Hour), rec("c", 0, 2*time.Hour), rec("d", 0, 2*time.Hour)}
	mustCreate(t, b, rs...)
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check of a sound table: %v", err)
	}
	e.exec(t, "UPDATE "+e.quoted()+" SET hash = '\\x01' WHERE id = $1", rs[0].ID[:])
	e.exec(t, "UPDATE "+e.quoted()+" SET deadline = deadline + 1 WHERE id = $1", rs[1].ID[:])
	e.exec(t, "UPDATE "+e.quoted()+" SET id = '\\x0102' WHERE id = $1", rs[2].ID[:])
	err := b.Check(ctx)
	if !errors.Is(err, usersessions.ErrCorrupt) {
		t.Fatalf("Check: %v, want ErrCorrupt", err)
	}
	for _, want := range []string{
		fmt.Sprintf("%x: hash is not 32", rs[0].ID[:]),
		fmt.Sprintf("%x: deadline disagrees", rs[1].ID[:]),
		"0102: id is not 16",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check's report lacks %q:\n%v", want, err)
		}
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 3 {
		t.Errorf("Check reported %d problems, want 3:\n%v", n, err)
	}
}

func TestOpenConcurrently(t *testing.T) {
	e := sharedEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := Open(ctxT(t), e.dsn, &Options{Table: e.table})
			if err != nil {
				errs <- err
				return
			}
			defer b.Close()
			if _, err := b.Open(ctxT(t), time.Duration(i)*time.Minute, discard()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Open: %v", err)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	e := sharedEnv(t)
	e.open(t, 0, nil)
	e.exec(t, "UPDATE "+e.table+"_settings SET value = 99 WHERE name = 'schema_version'")
	b, err := Open(ctxT(t), e.dsn, &Options{Table: e.table})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Open(ctxT(t), 0, discard()); !errors.Is(err, usersessions.ErrSchema) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchema", err)
	}
}

// TestBackendContract runs the backend-level contract suite on pgstore,
// each case on a table of its own.
func TestBackendContract(t *testing.T) {
	storetest.RunBackend(t, storetest.Backend{
		Open: func(t *testing.T) backend.Backend {
			return sharedEnv(t).unopened(t, nil)
		},
		Reopen: func(t *testing.T, b backend.Backend) backend.Backend {
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			e := sharedEnv(t)
			e.table = b.(*Backend).name
			return e.unopened(t, nil)
		},
		Corrupt: func(t *testing.T, b backend.Backend, id backend.ID) {
			e := sharedEnv(t)
			e.table = b.(*Backend).name
			e.exec(t, "UPDATE "+e.quoted()+" SET hash = '\\x01' WHERE id = $1", id[:])
		},
		ExactScan: true, // every filter is a WHERE clause
	})
}
