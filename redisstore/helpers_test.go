package redisstore

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/redistest"
	"github.com/usersessions/usersessions/storetest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

func discard() *slog.Logger { return storetest.Discard() }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// env is a key prefix on a server that tests open Backends on.
type env struct {
	srv    *redistest.Server
	prefix string
}

func sharedEnv(t testing.TB) env {
	s := redistest.Shared(t)
	return env{srv: s, prefix: s.Prefix("t")}
}

// ownEnv is an env on a server of t's own (for tests that kill, restart
// or freeze it).
func ownEnv(t testing.TB, cfg redistest.Config) env {
	return env{srv: redistest.Start(t, cfg), prefix: "sessions"}
}

// backend opens a Backend on e with opts (its Prefix replaced by e's),
// closed when t ends, without calling its Open.
func (e env) backend(t testing.TB, opts *Options) *Backend {
	t.Helper()
	o := Options{}
	if opts != nil {
		o = *opts
	}
	o.Prefix = e.prefix
	b, err := Open(ctxT(t), e.srv.URL(), &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// open is backend plus its Open with idle.
func (e env) open(t testing.TB, idle time.Duration, opts *Options) *Backend {
	t.Helper()
	b := e.backend(t, opts)
	if _, err := b.Open(ctxT(t), idle, discard()); err != nil {
		t.Fatal(err)
	}
	return b
}

var base = storetest.Base

// rec returns a new record of user, created at base+at, expiring life later.
func rec(user string, at, life time.Duration) *backend.Record {
	return storetest.NewRecord(user, at, life)
}

func mustCreate(t testing.TB, b *Backend, rs ...*backend.Record) {
	t.Helper()
	for _, r := range rs {
		if _, err := b.Create(ctxT(t), r, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func update(b *Backend, ctx context.Context, id backend.ID, change func(*backend.Record) error) error {
	_, err := b.Update(ctx, id, change, nil)
	return err
}

func del(b *Backend, ctx context.Context, id backend.ID, owner *string) error {
	_, err := b.Delete(ctx, id, owner, backend.Ending{})
	return err
}
