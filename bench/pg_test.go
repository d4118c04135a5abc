//go:build unix

package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/postgresstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for scs's postgresstore

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/pgtest"
	"github.com/usersessions/usersessions/pgstore"
)

// The PostgreSQL benchmarks run on one throwaway cluster per bench binary
// (internal/pgtest: initdb into a temporary directory, a unix socket only,
// fsync and synchronous_commit on), started by the first benchmark that
// needs it and stopped by TestMain. Without PostgreSQL they skip; plain
// `go test ./bench` never starts it.

// pgFixture is the load fixture's sessions in PostgreSQL: in a pgstore
// table, and the same scs sessions in scs's postgresstore table.
type pgFixture struct {
	c      *pgtest.Cluster
	dsn    string   // the fixture's database
	table  string   // pgstore's table of the sessions
	tokens []string // their cookie tokens, in the load fixture's order
	keys   [][]byte // their raw 16-byte IDs: the primary keys
	record float64  // mean size of a row as PostgreSQL stores it, bytes

	scsTable string // scs's table, with the load fixture's scs tokens
}

var (
	pgOnce sync.Once
	pgFx   *pgFixture
	pgErr  error
)

// getPGFixture returns the PostgreSQL fixture, building it on first use;
// b skips when PostgreSQL is not installed (pgtest fails it instead under
// CI=true).
func getPGFixture(b *testing.B, fx *loadFixture) *pgFixture {
	b.Helper()
	c := pgtest.Shared(b)
	pgOnce.Do(func() {
		start := time.Now()
		pgFx, pgErr = buildPGFixture(c, fx)
		if pgErr == nil {
			fmt.Printf("fixture: built PostgreSQL load fixture (%d sessions in pgstore, %.0f-byte rows; the same scs sessions in postgresstore) in %v\n",
				loadSessions, pgFx.record, time.Since(start).Round(time.Millisecond))
		}
	})
	if pgErr != nil {
		b.Fatal(pgErr)
	}
	return pgFx
}

func buildPGFixture(c *pgtest.Cluster, fx *loadFixture) (*pgFixture, error) {
	// A database of its own (as Cluster.NewDatabase, with errors returned:
	// this runs once for every benchmark).
	admin, err := pgx.Connect(bg, c.DSN(""))
	if err != nil {
		return nil, err
	}
	name := c.Table("bench")
	_, err = admin.Exec(bg, "CREATE DATABASE "+name)
	admin.Close(bg)
	if err != nil {
		return nil, err
	}
	pf := &pgFixture{
		c:        c,
		dsn:      c.DSN(name),
		table:    "sessions_load",
		tokens:   make([]string, loadSessions),
		keys:     make([][]byte, loadSessions),
		scsTable: "sessions", // as scs's README creates it
	}
	s, err := pf.newStore(pf.table, benchOptions())
	if err != nil {
		return nil, err
	}
	if err := fx.fill(s, pf.tokens, make([]string, loadSessions), pf.keys); err != nil {
		return nil, err
	}

	conn, err := pgx.Connect(bg, pf.dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(bg)
	if err := conn.QueryRow(bg, `SELECT avg(pg_column_size(t.*)) FROM `+pgx.Identifier{pf.table}.Sanitize()+` t`).Scan(&pf.record); err != nil {
		return nil, err
	}

	// scs's table, as its README defines it, holding the load fixture's
	// scs sessions: the same tokens, user IDs and CSRF values, its gob
	// codec, its default lifetime.
	_, err = conn.Exec(bg, `CREATE TABLE sessions (
	token TEXT PRIMARY KEY,
	data BYTEA NOT NULL,
	expiry TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions (expiry);`)
	if err != nil {
		return nil, err
	}
	expiry := time.Now().Add(24 * time.Hour).UTC()
	rows := make([][]any, loadSessions)
	for i := range loadSessions {
		data, err := scs.GobCodec{}.Encode(expiry, map[string]any{"userID": fx.users[i], "csrf": fx.csrf[i]})
		if err != nil {
			return nil, err
		}
		rows[i] = []any{fx.scsTokens[i], data, expiry}
	}
	if _, err := conn.CopyFrom(bg, pgx.Identifier{pf.scsTable}, []string{"token", "data", "expiry"}, pgx.CopyFromRows(rows)); err != nil {
		return nil, err
	}
	for _, t := range []string{pf.scsTable, pf.table} {
		if _, err := conn.Exec(bg, `VACUUM ANALYZE `+pgx.Identifier{t}.Sanitize()); err != nil {
			return nil, err
		}
	}
	return pf, nil
}

// newStore opens a Store over a pgstore Backend on table of the fixture's
// database.
func (pf *pgFixture) newStore(table string, opts *usersessions.Options) (*usersessions.Store, error) {
	be, err := pgstore.Open(bg, pf.dsn, &pgstore.Options{Table: table})
	if err != nil {
		return nil, err
	}
	return usersessions.NewStore(be, opts) // closes be when it fails
}

// openStore is newStore for b: the Store is closed when b ends.
func (pf *pgFixture) openStore(b *testing.B, table string, opts *usersessions.Options) *usersessions.Store {
	b.Helper()
	return openStoreFor(b, func() (*usersessions.Store, error) { return pf.newStore(table, opts) })
}

// benchLoadPG adds the PostgreSQL modes to BenchmarkLoad, on the same
// sessions as the bbolt modes:
//
//   - pgstore-cached: Store.Load over pgstore in the default mode, a cache
//     hit (the Store keeps its cache coherent through pgstore's change feed);
//   - pgstore-uncached: Store.Load over pgstore with NoCache, a SELECT by
//     primary key and a decode;
//   - pgx: a raw pgx SELECT of the same row's columns by primary key on a
//     pgxpool of default size (the floor under an uncached Load);
//   - scs-postgres: scs's SessionManager.Load over its postgresstore (on
//     database/sql with pgx's stdlib driver), plus reading the user ID.
func benchLoadPG(b *testing.B, fx *loadFixture) {
	mask := loadSessions - 1
	benchServerLoads(b, fx, "pgstore", func(b *testing.B) (func(*usersessions.Options) *usersessions.Store, []string) {
		pf := getPGFixture(b, fx)
		return func(o *usersessions.Options) *usersessions.Store { return pf.openStore(b, pf.table, o) }, pf.tokens
	})

	b.Run("pgx", func(b *testing.B) {
		pf := getPGFixture(b, fx)
		pool, err := pgxpool.New(bg, pf.dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		q := `SELECT id, hash, user_id, ip, user_agent, created, last_seen, expires, identity, vals FROM ` +
			pgx.Identifier{pf.table}.Sanitize() + ` WHERE id = $1`
		serialAndParallel(b, func(i int) (int, error) {
			var (
				id, hash, vals               []byte
				user, ua                     string
				ip                           *netip.Prefix
				created, seen, expires, idty int64
			)
			err := pool.QueryRow(bg, q, pf.keys[i&mask]).Scan(&id, &hash, &user, &ip, &ua, &created, &seen, &expires, &idty, &vals)
			if errors.Is(err, pgx.ErrNoRows) {
				return 0, errMiss
			}
			return len(user) + len(vals), err
		}, nil)
	})

	b.Run("scs-postgres", func(b *testing.B) {
		pf := getPGFixture(b, fx)
		db, err := sql.Open("pgx", pf.dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		sm := scs.New()
		sm.Store = postgresstore.NewWithConfig(db, postgresstore.Config{TableName: pf.scsTable}) // no cleanup goroutine
		benchSCSLoad(b, fx, sm)
	})
}

// benchCreatePG adds pgstore to BenchmarkCreate: Store.Create over pgstore
// from 1 and 64 concurrent writers, each on a fresh table. A Create is
// durable when it returns (one commit, fsync on); concurrent ones share
// INSERTs and commits through pgstore's group commit.
func benchCreatePG(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("pgstore/writers=%d", writers), func(b *testing.B) {
			pf := getPGFixture(b, getLoadFixture(b))
			s := pf.openStore(b, pf.c.Table("create"), benchOptions())
			createWith(b, s, writers, false)
		})
	}
}

// BenchmarkRevokeToRefused measures how soon a revocation on one instance
// is refused by another: two Stores over pgstore on one table, both in the
// default cached mode. Per operation, A creates a session and B loads it
// until it serves it from its cache (untimed); then A deletes it, and B's
// Load is called until it returns ErrNotFound. The latency is from A's
// Delete returning (the revocation committed) to B's first refusal, polled
// every pollEvery; p50-ms,
// p99-ms and max-ms are its percentiles over the b.N revocations. ns/op is
// the timed part: the Delete and the wait.
func BenchmarkRevokeToRefused(b *testing.B) {
	pf := getPGFixture(b, getLoadFixture(b))
	table := pf.c.Table("revoke")
	revokeToRefused(b, pf.openStore(b, table, benchOptions()), pf.openStore(b, table, benchOptions()))
}

// revokeToRefused measures b.N revocations on a that o, which serves each
// session from its cache, must then refuse.
func revokeToRefused(b *testing.B, a, o *usersessions.Store) {
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		sess, err := a.Create(bg, fmt.Sprintf("user-%06d", i%loadSessions), client)
		if err != nil {
			b.Fatal(err)
		}
		warmOne(b, o, sess.Token)
		b.StartTimer()
		if err := a.End(bg, sess.ID, usersessions.EndOptions{}); err != nil {
			b.Fatal(err)
		}
		done := time.Now()
		for {
			_, err := o.Load(bg, sess.Token)
			if errors.Is(err, usersessions.ErrNotFound) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if time.Since(done) > 5*time.Second {
				b.Fatal("B still accepts a revoked token 5 s after A's Delete returned")
			}
			pause(pollEvery)
		}
		lat = append(lat, time.Since(done))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
}

// pollEvery is the pause between two of B's Loads while it waits for the
// revocation: short against the latencies measured, long enough that the
// waiting does not take a core from the PostgreSQL processes and the
// change feed it waits for (spinning instead made the p99 ~20 times
// worse on 2 cores). It is a nanosleep of the thread, not time.Sleep:
// the runtime's timers wake a process that has nothing else to do with
// millisecond resolution, so time.Sleep(20µs) takes ~1 ms and the p99
// would measure the poll, not the revocation.
const pollEvery = 20 * time.Microsecond

// runTests runs the tests of m and then stops the PostgreSQL cluster, if
// a benchmark started one.
func runTests(m *testing.M) int { return pgtest.Main(m) }

// warmOne loads token from s until s serves it from its cache (ristretto
// applies Sets asynchronously).
func warmOne(b *testing.B, s *usersessions.Store, token string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		before := s.Stats().Hits
		if _, err := s.Load(ctx, token); err != nil {
			b.Fatalf("Load while warming: %v", err)
		}
		if s.Stats().Hits > before {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
	b.Fatal("B never served the session from its cache")
}

// percentile returns the p-th percentile of sorted ds (nearest rank, the
// lower one).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[int(float64(len(ds)-1)*p/100)]
}
