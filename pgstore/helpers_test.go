package pgstore

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/pgtest"
	"github.com/usersessions/usersessions/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// env is a table on a cluster that tests open Backends on.
type env struct {
	c     *pgtest.Cluster
	dsn   string
	table string
}

func sharedEnv(t testing.TB) env {
	c := pgtest.Shared(t)
	return env{c: c, dsn: c.DSN(""), table: c.Table("t")}
}

// open opens a Backend on e with idle, closed when t ends.
func (e env) open(t testing.TB, idle time.Duration, opts *Options) *Backend {
	t.Helper()
	b := e.unopened(t, opts)
	if _, err := b.Open(ctxT(t), idle, discard()); err != nil {
		t.Fatal(err)
	}
	return b
}

// unopened returns a Backend on e's table with opts, not yet opened
// (Backend.Open), closed when t ends.
func (e env) unopened(t testing.TB, opts *Options) *Backend {
	t.Helper()
	o := Options{Table: e.table}
	if opts != nil {
		o = *opts
		o.Table = e.table
	}
	b, err := Open(ctxT(t), e.dsn, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// exec runs sql on e's database.
func (e env) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(ctxT(t), e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctxT(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// queryInt64 returns one bigint from sql.
func (e env) queryInt64(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	conn, err := pgx.Connect(ctxT(t), e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(ctxT(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (e env) quoted() string { return pgx.Identifier{e.table}.Sanitize() }

// The contract suite's record helpers, for pgstore's own backend tests.
var (
	base = storetest.RecordBase
	rec  = storetest.NewRecord
)

func mustCreate(t testing.TB, b *Backend, rs ...*backend.Record) {
	t.Helper()
	for _, r := range rs {
		if err := create(b, ctxT(t), r); err != nil {
			t.Fatal(err)
		}
	}
}

// startCluster starts a cluster of t's own, for tests that stop it.
func startCluster(t testing.TB) *pgtest.Cluster { return pgtest.Start(t) }

// freeze stops server process pid until the returned thaw or t's end.
func freeze(t testing.TB, pid int) (thaw func()) { return pgtest.Freeze(t, pid) }

// The Backend's methods as the tests written before History and
// MaxPerUser call them: no limit, no history.

func create(b *Backend, ctx context.Context, r *backend.Record) error {
	_, err := b.Create(ctx, r, nil)
	return err
}

func update(b *Backend, ctx context.Context, id backend.ID, change func(*backend.Record) error) error {
	_, err := b.Update(ctx, id, change, nil)
	return err
}

func del(b *Backend, ctx context.Context, id backend.ID, owner *string) error {
	_, err := b.Delete(ctx, id, owner, backend.Ending{})
	return err
}
