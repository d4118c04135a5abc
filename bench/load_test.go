package bench

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/usersessions/usersessions"
	bolt "go.etcd.io/bbolt"
)

// loadSessions is how many sessions the load benchmarks cycle through: all
// of them stay in the cache, so cached loads are hits.
const loadSessions = 1024

// loadFixture is a usersessions file and an scs file holding loadSessions
// equivalent sessions: a user, the same client, and a CSRF token value.
type loadFixture struct {
	path   string   // usersessions database
	tokens []string // their cookie tokens
	ids    []string // their public IDs
	users  []string
	csrf   []string
	keys   [][]byte // raw 16-byte IDs: the record keys in bbolt
	record float64  // mean size of an encoded record, bytes

	scsPath   string
	scsTokens []string
	scsRecord float64 // mean size of an scs value (expiry + gob), bytes
}

var (
	loadOnce sync.Once
	loadFx   *loadFixture
	loadErr  error
)

func getLoadFixture(b *testing.B) *loadFixture {
	b.Helper()
	loadOnce.Do(func() {
		start := time.Now()
		loadFx, loadErr = buildLoadFixture()
		if loadErr == nil {
			fmt.Printf("fixture: built load fixture (%d sessions, %.0f-byte records, scs %.0f bytes) in %v\n",
				loadSessions, loadFx.record, loadFx.scsRecord, time.Since(start).Round(time.Millisecond))
		}
	})
	if loadErr != nil {
		b.Fatal(loadErr)
	}
	return loadFx
}

func randomText(n int) string {
	buf := make([]byte, n)
	rand.Read(buf)
	return base64.RawURLEncoding.EncodeToString(buf)
}

func buildLoadFixture() (*loadFixture, error) {
	fx := &loadFixture{
		path:      filepath.Join(tmpRoot, "load.db"),
		tokens:    make([]string, loadSessions),
		ids:       make([]string, loadSessions),
		users:     make([]string, loadSessions),
		csrf:      make([]string, loadSessions),
		keys:      make([][]byte, loadSessions),
		scsPath:   filepath.Join(tmpRoot, "scs.db"),
		scsTokens: make([]string, loadSessions),
	}
	for i := range loadSessions {
		fx.users[i] = fmt.Sprintf("user-%06d", i)
		fx.csrf[i] = randomText(32)
	}

	s, err := usersessions.Open(fx.path, benchOptions())
	if err != nil {
		return nil, err
	}
	if err := fx.fill(s, fx.tokens, fx.ids, fx.keys); err != nil {
		return nil, err
	}

	// The mean record size, read back from the file.
	db, err := openRawBolt(fx.path)
	if err != nil {
		return nil, err
	}
	err = db.View(func(tx *bolt.Tx) error {
		total := 0
		for _, k := range fx.keys {
			v := tx.Bucket([]byte("sessions")).Get(k)
			if v == nil {
				return fmt.Errorf("record %x is not in bucket \"sessions\"", k)
			}
			total += len(v)
		}
		fx.record = float64(total) / loadSessions
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}

	// The same sessions for scs: its token, its gob codec, scs's default
	// lifetime.
	st, err := openSCSBolt(fx.scsPath)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	expiry := time.Now().Add(24 * time.Hour).UTC()
	data := make([][]byte, loadSessions)
	total := 0
	for i := range loadSessions {
		fx.scsTokens[i] = randomText(32) // as scs's generateToken
		data[i], err = scs.GobCodec{}.Encode(expiry, map[string]any{"userID": fx.users[i], "csrf": fx.csrf[i]})
		if err != nil {
			return nil, err
		}
		total += 8 + len(data[i])
	}
	fx.scsRecord = float64(total) / loadSessions
	if err := st.commitMany(fx.scsTokens, data, expiry); err != nil {
		return nil, err
	}
	return fx, st.Close()
}

// fill creates the fixture's sessions (users, CSRF values) in s, writes
// their tokens, public IDs and raw IDs (the record keys) into the slices
// given, and closes s.
func (fx *loadFixture) fill(s *usersessions.Store, tokens, ids []string, keys [][]byte) error {
	err := parallelDo(loadSessions, 64, func(i int) error {
		sess, err := s.Create(bg, fx.users[i], client)
		if err != nil {
			return err
		}
		sess.Set("csrf", fx.csrf[i])
		if err := s.Save(bg, sess); err != nil {
			return err
		}
		tokens[i], ids[i] = sess.Token, sess.ID
		keys[i], err = base64.RawURLEncoding.DecodeString(sess.ID)
		return err
	})
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// openStoreFor opens a Store with open, closed when b ends.
func openStoreFor(b *testing.B, open func() (*usersessions.Store, error)) *usersessions.Store {
	b.Helper()
	s, err := open()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	})
	return s
}

// benchServerLoads adds a shared backend's cached and uncached modes to
// BenchmarkLoad (name+"-cached", name+"-uncached"): Store.Load in the
// default mode, a cache hit (the Store keeps its cache coherent through the
// backend's change feed), and with NoCache, a read of the server. setup
// returns, for the benchmark, a Store opener and the fixture's tokens on
// that server.
func benchServerLoads(b *testing.B, fx *loadFixture, name string, setup func(b *testing.B) (open func(*usersessions.Options) *usersessions.Store, tokens []string)) {
	mask := loadSessions - 1
	for _, cached := range []bool{true, false} {
		mode := name + "-uncached"
		if cached {
			mode = name + "-cached"
		}
		b.Run(mode, func(b *testing.B) {
			open, tokens := setup(b)
			opts := benchOptions()
			opts.NoCache = !cached
			s := open(opts)
			fx.warm(b, s, tokens, cached)
			var misses func() uint64
			if cached {
				misses = func() uint64 { return s.Stats().Misses }
			}
			serialAndParallel(b, func(i int) (int, error) {
				sess, err := s.Load(bg, tokens[i&mask])
				if err != nil {
					return 0, err
				}
				return len(sess.UserID), nil
			}, misses)
		})
	}
}

// benchSCSLoad is the scs mode of BenchmarkLoad on sm: SessionManager.Load
// of the fixture's scs tokens, plus reading the user ID.
func benchSCSLoad(b *testing.B, fx *loadFixture, sm *scs.SessionManager) {
	mask := loadSessions - 1
	serialAndParallel(b, func(i int) (int, error) {
		ctx, err := sm.Load(bg, fx.scsTokens[i&mask])
		if err != nil {
			return 0, err
		}
		user := sm.GetString(ctx, "userID")
		if user == "" {
			return 0, errMiss // scs made a new, empty session
		}
		return len(user), nil
	}, nil)
}

// openSCS opens the scs fixture behind a SessionManager; it is closed when
// b ends.
func (fx *loadFixture) openSCS(b *testing.B) *scs.SessionManager {
	b.Helper()
	st, err := openSCSBolt(fx.scsPath)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	sm := scs.New()
	sm.Store = st
	return sm
}

// openRawBolt opens a bbolt file with the options usersessions uses.
func openRawBolt(path string) (*bolt.DB, error) {
	return bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
}

// openLoad opens the load fixture's store; it is closed when b ends.
func (fx *loadFixture) openLoad(b *testing.B, cached bool) *usersessions.Store {
	b.Helper()
	opts := benchOptions()
	opts.NoCache = !cached
	s, err := usersessions.Open(fx.path, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	})
	fx.warm(b, s, fx.tokens, cached)
	return s
}

var bboltShape sync.Once

// rawSession is what the raw ristretto benchmark caches: a struct shaped
// like a usersessions.Session, behind a pointer, keyed by a uint64.
type rawSession struct {
	ID, UserID, UserAgent          string
	IP                             netip.Addr
	CreatedAt, LastSeen, ExpiresAt time.Time
	Values                         map[string]any
	Hash                           [32]byte
	Gen                            uint64
}

// BenchmarkLoad loads a session by its token, cycling over loadSessions
// sessions, in every mode:
//
//   - ristretto: a raw ristretto Get of an equivalent struct by a uint64 key
//     (the floor under a cached Load);
//   - cached: Store.Load in the default mode, a cache hit;
//   - uncached: Store.Load with NoCache, a bbolt read and decode;
//   - bbolt: a raw bbolt View+Get+copy of the same record bytes under the
//     same 16-byte key, in the same file (the floor under an uncached Load);
//   - scs-bbolt: scs's SessionManager.Load over scsBoltStore, plus reading
//     the user ID from it.
func BenchmarkLoad(b *testing.B) {
	fx := getLoadFixture(b)
	mask := loadSessions - 1

	b.Run("ristretto", func(b *testing.B) {
		maxCost := int64(64 << 20) // the Store's default CacheBytes
		items := maxCost / 512
		c, err := ristretto.NewCache(&ristretto.Config[uint64, *rawSession]{
			NumCounters:        items * 10,
			MaxCost:            maxCost,
			BufferItems:        64,
			IgnoreInternalCost: true,
		})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		keys := make([]uint64, loadSessions)
		now := time.Now()
		for i := range keys {
			keys[i] = cacheKey(fx.keys[i])
			v := &rawSession{
				ID: fx.ids[i], UserID: fx.users[i], UserAgent: userAgent, IP: clientIP,
				CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(14 * 24 * time.Hour), /* the default Lifetime */
				Values: map[string]any{"csrf": fx.csrf[i]},
			}
			if !c.Set(keys[i], v, int64(fx.record)+256) {
				b.Fatal("ristretto dropped a Set")
			}
		}
		c.Wait()
		for _, k := range keys {
			if _, ok := c.Get(k); !ok {
				b.Fatal("ristretto lost an entry")
			}
		}
		serialAndParallel(b, func(i int) (int, error) {
			v, ok := c.Get(keys[i&mask])
			if !ok {
				return 0, errMiss
			}
			return len(v.UserID), nil
		}, nil)
	})

	for _, cached := range []bool{true, false} {
		name := "uncached"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			s := fx.openLoad(b, cached)
			var misses func() uint64
			if cached {
				misses = func() uint64 { return s.Stats().Misses }
			}
			serialAndParallel(b, func(i int) (int, error) {
				sess, err := s.Load(bg, fx.tokens[i&mask])
				if err != nil {
					return 0, err
				}
				return len(sess.UserID), nil
			}, misses)
		})
	}

	b.Run("bbolt", func(b *testing.B) {
		db, err := openRawBolt(fx.path)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		bucket := []byte("sessions")
		bboltShape.Do(func() {
			db.View(func(tx *bolt.Tx) error {
				st := tx.Bucket(bucket).Stats()
				fmt.Printf("fixture: load fixture's \"sessions\" bucket as Load/bbolt reads it: %d keys, depth %d, %d leaf pages, %d branch pages\n",
					st.KeyN, st.Depth, st.LeafPageN, st.BranchPageN)
				return nil
			})
		})
		serialAndParallel(b, func(i int) (int, error) {
			var rec []byte
			err := db.View(func(tx *bolt.Tx) error {
				v := tx.Bucket(bucket).Get(fx.keys[i&mask])
				if v == nil {
					return errMiss
				}
				rec = bytes.Clone(v)
				return nil
			})
			return len(rec), err
		}, nil)
	})

	b.Run("scs-bbolt", func(b *testing.B) { benchSCSLoad(b, fx, fx.openSCS(b)) })

	benchLoadPG(b, fx)
	benchLoadRedis(b, fx)
}

// BenchmarkLoadTouch is the middleware's per-request store work on the
// cached store: Store.LoadTouch, a Load and a Touch (which records activity
// in memory) in one pass, as httpx runs it. Compare with
// BenchmarkLoad/cached; BenchmarkLoadThenTouch makes them two calls.
func BenchmarkLoadTouch(b *testing.B) {
	fx := getLoadFixture(b)
	mask := loadSessions - 1
	s := fx.openTouched(b)
	serialAndParallel(b, func(i int) (int, error) {
		sess, err := s.LoadTouch(bg, fx.tokens[i&mask], client)
		if err != nil {
			return 0, err
		}
		return len(sess.UserID), nil
	}, func() uint64 { return s.Stats().Misses })
}

// BenchmarkLoadThenTouch is Load, then Touch as a second call: what a
// caller of the two separate methods pays.
func BenchmarkLoadThenTouch(b *testing.B) {
	fx := getLoadFixture(b)
	mask := loadSessions - 1
	s := fx.openTouched(b)
	serialAndParallel(b, func(i int) (int, error) {
		sess, err := s.Load(bg, fx.tokens[i&mask])
		if err != nil {
			return 0, err
		}
		if err := s.Touch(bg, sess.ID, client); err != nil {
			return 0, err
		}
		return len(sess.UserID), nil
	}, func() uint64 { return s.Stats().Misses })
}

// openTouched opens the cached store with every session touched once: the
// first Touch of a session reads its stored state, every later one only
// updates memory. The benchmarks measure that steady state.
func (fx *loadFixture) openTouched(b *testing.B) *usersessions.Store {
	s := fx.openLoad(b, true)
	for _, id := range fx.ids {
		if err := s.Touch(bg, id, client); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// cacheKey folds a raw ID to a uint64 key: 64 of the random bits that
// follow its 48-bit time prefix. usersessions derives its keys from the
// same random bits; to ristretto, any well-spread uint64 keys are alike.
func cacheKey(id []byte) uint64 {
	return binary.LittleEndian.Uint64(id[8:16])
}

// warm loads every session of tokens (the fixture's sessions, in order) from
// s and checks it. In cached mode it repeats until one full pass has no
// miss, so that every session is in the cache.
func (fx *loadFixture) warm(b *testing.B, s *usersessions.Store, tokens []string, cached bool) {
	b.Helper()
	// Every session loads, and in cached mode every one is in the cache:
	// ristretto applies Sets asynchronously (and may drop one under
	// contention), so load all until one full pass has no miss.
	for pass := 0; ; pass++ {
		before := s.Stats().Misses
		for i, tok := range tokens {
			sess, err := s.Load(bg, tok)
			if err != nil {
				b.Fatalf("session %d: %v", i, err)
			}
			if v, _ := sess.Get("csrf"); v != fx.csrf[i] || sess.UserID != fx.users[i] {
				b.Fatalf("session %d loaded wrong: %q %v", i, sess.UserID, v)
			}
		}
		if !cached || s.Stats().Misses == before {
			break
		}
		if pass == 100 {
			b.Fatalf("cache still misses after %d passes", pass)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
