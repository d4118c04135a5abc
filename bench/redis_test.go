//go:build unix

package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/redis/rueidis"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/redistest"
	"github.com/usersessions/usersessions/redisstore"
)

// The Redis benchmarks run on one throwaway redis-server per bench binary
// (internal/redistest: a unix socket, the append-only file with appendfsync
// always, so that a Create is durable when it returns, as on bbolt and
// PostgreSQL), started by the first benchmark that needs it and stopped by
// TestMain (closeRedis). Without redis-server they skip; plain
// `go test ./bench` never starts it.

// redisFixture is the load fixture's sessions in Redis: under a redisstore
// prefix, and the same scs sessions in scs's redisstore.
type redisFixture struct {
	srv    *redistest.Server
	prefix string   // redisstore's prefix of the sessions
	tokens []string // their cookie tokens, in the load fixture's order
	keys   []string // their record keys (what the raw read reads)

	scsPrefix string // scs's key prefix, with the load fixture's scs tokens
}

var (
	redisOnce sync.Once
	redisFx   *redisFixture
	redisErr  error
)

// getRedisFixture returns the Redis fixture, building it on first use; b
// skips when redis-server is not installed (fails under CI=true).
func getRedisFixture(b *testing.B, fx *loadFixture) *redisFixture {
	b.Helper()
	redistest.Require(b)
	redisOnce.Do(func() {
		start := time.Now()
		redisFx, redisErr = buildRedisFixture(fx)
		if redisErr == nil {
			fmt.Printf("fixture: built Redis load fixture (%d sessions in redisstore; the same scs sessions in scs's redisstore; appendfsync always) in %v\n",
				loadSessions, time.Since(start).Round(time.Millisecond))
		}
	})
	if redisErr != nil {
		b.Fatal(redisErr)
	}
	return redisFx
}

// closeRedis stops the fixture's server, if a benchmark started one.
func closeRedis() {
	if redisFx != nil {
		redisFx.srv.Close()
	}
}

func buildRedisFixture(fx *loadFixture) (*redisFixture, error) {
	srv, err := redistest.New(redistest.Config{Persist: true})
	if err != nil {
		return nil, err
	}
	rf := &redisFixture{srv: srv, prefix: "sessions_load", tokens: make([]string, loadSessions), keys: make([]string, loadSessions), scsPrefix: "scs:session:"}
	s, err := rf.newStore(rf.prefix, benchOptions())
	if err != nil {
		return rf, err
	}
	ids := make([]string, loadSessions)
	if err := fx.fill(s, rf.tokens, ids, make([][]byte, loadSessions)); err != nil {
		return rf, err
	}
	if err := rf.findKeys(ids); err != nil {
		return rf, err
	}

	// scs's store, as its README sets it up, holding the load fixture's
	// scs sessions: the same tokens, user IDs and CSRF values, its gob
	// codec, its default lifetime.
	pool := rf.redigoPool()
	defer pool.Close()
	st := scsredis.NewWithPrefix(pool, rf.scsPrefix)
	expiry := time.Now().Add(24 * time.Hour).UTC()
	for i := range loadSessions {
		data, err := scs.GobCodec{}.Encode(expiry, map[string]any{"userID": fx.users[i], "csrf": fx.csrf[i]})
		if err != nil {
			return rf, err
		}
		if err := st.Commit(fx.scsTokens[i], data, expiry); err != nil {
			return rf, err
		}
	}
	return rf, nil
}

// findKeys finds the record key of each session by its ID (the key ends
// with it): a SCAN, once, for the raw read's benchmark.
func (rf *redisFixture) findKeys(ids []string) error {
	c, err := rf.rawClient()
	if err != nil {
		return err
	}
	defer c.Close()
	byID := map[string]string{}
	cursor := uint64(0)
	for {
		e, err := c.Do(bg, c.B().Scan().Cursor(cursor).Match(rf.prefix+":s:*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			return err
		}
		for _, k := range e.Elements {
			byID[k[strings.LastIndexByte(k, ':')+1:]] = k
		}
		if cursor = e.Cursor; cursor == 0 {
			break
		}
	}
	for i, id := range ids {
		if rf.keys[i] = byID[id]; rf.keys[i] == "" {
			return fmt.Errorf("no record key for session %s", id)
		}
	}
	return nil
}

// rawClient is a plain rueidis client of the server, as an app would make
// one.
func (rf *redisFixture) rawClient() (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(rf.srv.URL())
	if err != nil {
		return nil, err
	}
	return rueidis.NewClient(opt)
}

// redigoPool is a redigo pool of the server, for scs's store.
func (rf *redisFixture) redigoPool() *redis.Pool {
	return &redis.Pool{
		MaxIdle: 64,
		Dial:    func() (redis.Conn, error) { return redis.Dial("unix", rf.srv.Socket()) },
	}
}

// newStore opens a Store over a redisstore Backend with prefix.
func (rf *redisFixture) newStore(prefix string, opts *usersessions.Options) (*usersessions.Store, error) {
	be, err := redisstore.Open(bg, rf.srv.URL(), &redisstore.Options{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	return usersessions.NewStore(be, opts) // closes be when it fails
}

// openStore is newStore for b: the Store is closed when b ends.
func (rf *redisFixture) openStore(b *testing.B, prefix string, opts *usersessions.Options) *usersessions.Store {
	b.Helper()
	return openStoreFor(b, func() (*usersessions.Store, error) { return rf.newStore(prefix, opts) })
}

// benchLoadRedis adds the Redis modes to BenchmarkLoad, on the same
// sessions as the bbolt modes:
//
//   - redisstore-cached: Store.Load over redisstore in the default mode, a
//     cache hit (the Store keeps its cache coherent through redisstore's
//     change feed);
//   - redisstore-uncached: Store.Load over redisstore with NoCache: the
//     locator (client-side cached), one HGETALL, a decode;
//   - rueidis: a raw rueidis HGETALL of the same record's key (the floor
//     under an uncached Load);
//   - scs-redis: scs's SessionManager.Load over its redisstore (on redigo),
//     plus reading the user ID.
func benchLoadRedis(b *testing.B, fx *loadFixture) {
	mask := loadSessions - 1
	benchServerLoads(b, fx, "redisstore", func(b *testing.B) (func(*usersessions.Options) *usersessions.Store, []string) {
		rf := getRedisFixture(b, fx)
		return func(o *usersessions.Options) *usersessions.Store { return rf.openStore(b, rf.prefix, o) }, rf.tokens
	})

	b.Run("rueidis", func(b *testing.B) {
		rf := getRedisFixture(b, fx)
		c, err := rf.rawClient()
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		// As a request would: with a cancellable context (an HTTP
		// request's), rueidis runs a connection's reads and writes on
		// goroutines of their own, as it does for the Store, whose Open
		// and background work pass cancellable contexts. With
		// context.Background() alone a lone caller would read and write
		// the socket itself, which no server's connections do once they
		// served a request.
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		serialAndParallel(b, func(i int) (int, error) {
			m, err := c.Do(ctx, c.B().Hgetall().Key(rf.keys[i&mask]).Build()).AsStrMap()
			if err == nil && len(m) == 0 {
				err = errMiss
			}
			return len(m["u"]) + len(m["v"]), err
		}, nil)
	})

	b.Run("scs-redis", func(b *testing.B) {
		rf := getRedisFixture(b, fx)
		pool := rf.redigoPool()
		defer pool.Close()
		sm := scs.New()
		sm.Store = scsredis.NewWithPrefix(pool, rf.scsPrefix)
		benchSCSLoad(b, fx, sm)
	})
}

// benchCreateRedis adds redisstore to BenchmarkCreate: Store.Create over
// redisstore from 1 and 64 concurrent writers, each on a fresh prefix. The
// server fsyncs its append-only file before it answers, once for all the
// writes of one pass of its event loop: concurrent Creates share fsyncs.
func benchCreateRedis(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("redisstore/writers=%d", writers), func(b *testing.B) {
			rf := getRedisFixture(b, getLoadFixture(b))
			s := rf.openStore(b, rf.srv.Prefix("create"), benchOptions())
			createWith(b, s, writers, false)
		})
	}
}

// BenchmarkRevokeToRefusedRedis is BenchmarkRevokeToRefused on redisstore:
// two cached Stores on one prefix; the latency is from A's Delete
// returning to B's first refusal.
func BenchmarkRevokeToRefusedRedis(b *testing.B) {
	rf := getRedisFixture(b, getLoadFixture(b))
	prefix := rf.srv.Prefix("revoke")
	revokeToRefused(b, rf.openStore(b, prefix, benchOptions()), rf.openStore(b, prefix, benchOptions()))
}
