package usersessions

import (
	"crypto/subtle"
	"sync/atomic"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/usersessions/usersessions/backend"
)

// The cache.
//
// Cached mode keeps decoded sessions in a ristretto cache keyed by ID. The
// hard part is revocation: ristretto's Set is buffered and asynchronous, and
// plain cache-aside has a classic race — a reader misses, reads the record,
// a deleter removes record and cache entry, then the reader caches the row it
// read, and the revoked session is served again.
//
// Generations make that impossible by construction. Every ID hashes to one
// of genStripes counters. A writer that changes or removes a session bumps
// its stripe's counter after the transaction commits and before it returns.
// A reader loads the counter before it opens its read transaction and stores
// that value in the entry it caches; a hit counts only while the entry's
// generation still equals the stripe's current one. So an entry filled from
// a snapshot older than any completed write is dead the moment that write
// returns, however late the reader's Set lands. Bumping a stripe also
// invalidates the other IDs that share it, which only costs them a miss.
const genStripes = 1 << 14

type memCache struct {
	c    *ristretto.Cache[uint64, *cacheEntry]
	gens [genStripes]atomic.Uint64

	// epoch moves on when a shared backend's change feed is lost (to odd:
	// nothing is served or cached while odd) and when it is restored (to
	// even): every entry from before either step is dead at once.
	epoch atomic.Uint64

	// Counters are striped by key so parallel loads don't fight over one
	// cache line.
	hits, misses [16]paddedCounter
}

type paddedCounter struct {
	n atomic.Uint64
	_ [56]byte
}

// cacheEntry is an immutable snapshot of a session record.
//
// Besides the stored hash it may hold the token itself, when the entry was
// filled by a path that had just verified it (Create, a Load miss). A hit
// then compares the cookie's 64 characters with it in constant time, and
// neither decodes the token nor hashes the secret: SHA-256 alone cost more
// than the rest of a hit. The token lives only in process memory, which
// also holds every cookie of every request in flight; it is never written
// to disk, and a Rotate or End kills the entry.
//
// A hit reads the whole entry but the hash, so the token and the session
// are held inline, in the order a hit reads them: one allocation, and the
// fewest cache lines (on a hit, memory latency is most of the cost).
type cacheEntry struct {
	gen   uint64
	epoch uint64
	id    backend.ID
	token [TokenLength]byte // the token's text; all zero when filled without it
	act   activityMemo      // what the activity table holds for it
	sess  Session           // shared: values copy-on-write, never written
	hash  tokenHash
}

// hasToken reports whether the entry holds the token text.
func (e *cacheEntry) hasToken() bool { return e.token[0] != 0 }

// verify reports whether sec is the session's secret.
func (e *cacheEntry) verify(sec *secret) bool {
	h := sec.hash()
	return subtle.ConstantTimeCompare(e.hash[:], h[:]) == 1
}

// maxCacheItems bounds the items ristretto sizes its admission counters
// for (ten 4-bit counters each): 4M items, about 20 MiB of counters.
const maxCacheItems = 1 << 22

// entryOverhead approximates the memory of an entry beyond its record bytes.
const entryOverhead = 256

func newMemCache(maxBytes int64) (*memCache, error) {
	// Ristretto wants ~10 counters per item it may hold; records are a few
	// hundred bytes.
	// Bounded both ways: a huge CacheBytes (math.MaxInt64 for "no limit")
	// must not ask ristretto for an impossible counter table.
	items := min(max(maxBytes/int64(entryOverhead+256), 1024), maxCacheItems)
	c, err := ristretto.NewCache(&ristretto.Config[uint64, *cacheEntry]{
		NumCounters:        items * 10,
		MaxCost:            maxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, err
	}
	return &memCache{c: c}, nil
}

func (m *memCache) stripe(key uint64) *atomic.Uint64 { return &m.gens[key%genStripes] }

// A ticket is what a reader records before it reads the backend, and
// what the entry it fills carries.
type ticket struct{ gen, epoch uint64 }

// ticket returns the values a reader must record before reading the
// backend.
func (m *memCache) ticket(id backend.ID) ticket {
	return ticket{m.stripe(cacheKey(id)).Load(), m.epoch.Load()}
}

// distrust kills every entry and refuses new ones until trust.
func (m *memCache) distrust() {
	for {
		e := m.epoch.Load()
		if e%2 == 1 || m.epoch.CompareAndSwap(e, e+1) {
			return
		}
	}
}

// trust accepts entries again (none from before distrust).
func (m *memCache) trust() {
	for {
		e := m.epoch.Load()
		if e%2 == 0 || m.epoch.CompareAndSwap(e, e+1) {
			return
		}
	}
}

// get returns the live entry for id, or nil.
func (m *memCache) get(id backend.ID) *cacheEntry {
	key := cacheKey(id)
	e, ok := m.c.Get(key)
	if !ok || e.id != id || e.gen != m.stripe(key).Load() || e.epoch != m.epoch.Load() {
		m.misses[key%16].n.Add(1)
		return nil
	}
	m.hits[key%16].n.Add(1)
	return e
}

// getByToken is the fast path of Load: the live entry that was filled with
// exactly this token, or nil (then Load takes the full path, which counts
// the hit or miss). It counts nothing: Load counts the hit (Store.countHit).
func (m *memCache) getByToken(token string) *cacheEntry {
	key := tokenCacheKey(token)
	e, ok := m.c.Get(key)
	if !ok || !e.hasToken() || e.gen != m.stripe(key).Load() || e.epoch != m.epoch.Load() || !equalConstantTime(unsafe.String(&e.token[0], TokenLength), token) {
		return nil
	}
	return e
}

// put caches a copy of sess, read with ticket t, with the verified
// token when there is one. sess is marked shared: its values now belong to
// the cache too and are copied before a write (see Session.own).
func (m *memCache) put(id backend.ID, t ticket, hash tokenHash, token string, sess *Session, cost int) {
	sess.shared = true
	if t.epoch%2 == 1 {
		return // the change feed is down: nothing is cached
	}
	e := &cacheEntry{id: id, gen: t.gen, epoch: t.epoch, hash: hash, sess: *sess}
	if len(token) == TokenLength {
		copy(e.token[:], token)
	}
	m.c.Set(cacheKey(id), e, int64(cost+entryOverhead))
}

// invalidate kills every cached snapshot of id. Call it after the write
// committed and before the writer returns.
func (m *memCache) invalidate(id backend.ID) {
	key := cacheKey(id)
	m.stripe(key).Add(1)
	m.c.Del(key) // frees memory; correctness comes from the generation
}

func (m *memCache) counts() (hits, misses uint64) {
	return sumCounters(&m.hits), sumCounters(&m.misses)
}

func sumCounters(c *[16]paddedCounter) uint64 {
	var n uint64
	for i := range c {
		n += c[i].n.Load()
	}
	return n
}

func (m *memCache) close() { m.c.Close() }
