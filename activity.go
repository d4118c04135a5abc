package usersessions

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usersessions/usersessions/backend"
)

// Activity.
//
// Touch runs on every request, so it must not write to disk. It records the
// latest activity (time, IP, user agent) in memory; a background flush
// writes what changed once per TouchInterval in one transaction, and Load,
// ListByUser and All overlay the in-memory value so they always report the
// freshest one. A crash loses at most one interval of LastSeen updates, never
// a session.
//
// The table is read on every Load and written on every Touch, so both are
// lock-free: each shard publishes an immutable map through an atomic
// pointer, and an entry's fields are atomics. Only adding or removing an
// entry takes the shard's lock and copies that shard's map, and entries
// stay while their session is active (a flush marks them clean instead of
// dropping them), so that happens about once per session per sign-in, not
// per request. Entries idle for two intervals are swept.

const activityShards = 1024

type activityTable struct {
	shards [activityShards]activityShard
	n      atomic.Int64
	adds   atomic.Uint64 // entries ever added: see activityMemo
}

type activityShard struct {
	mu sync.Mutex // held by writers, which replace m with a modified copy
	m  atomic.Pointer[activityMap]
	// removals counts remove calls on the shard. A reader that read a
	// session (from disk or cache) notes it first; add refuses to create
	// an entry if it moved, because an End may have committed after the
	// read and must not see its session brought back by a late touch.
	removals atomic.Uint64
	_        [40]byte // one shard per cache line
}

// activityMap is keyed by 64 of the ID's random bits (sessionID.activityKey): a
// uint64 key takes the runtime's fast map path, where a 16-byte array key
// would be hashed byte by byte, and this map is read on every Load and
// Touch. Entries carry the full ID, checked on every lookup; two live IDs
// sharing 64 random bits (about 2^-64 per pair) just keep their activity on
// disk only.
type activityMap = map[uint64]*activityEntry

// clientInfo is an immutable pair; a changed client gets a new one.
type clientInfo struct {
	ip        netip.Addr
	userAgent string
}

// activityEntry is the in-memory activity of one session. The fields a
// touch reads come first, followed by the client the entry started with:
// one allocation and few cache lines for a session that keeps its client.
type activityEntry struct {
	// gone is set before the entry leaves its map. A touch that finds it
	// set after recording starts over (its write may have been missed), and
	// a sweep re-checks an entry after setting it (a touch may have come in
	// between): so no activity is lost to a concurrent sweep or removal.
	gone atomic.Bool

	lastSeen atomic.Int64 // Unix nanoseconds
	client   atomic.Pointer[clientInfo]
	expires  int64      // the session's absolute deadline, so touch can refuse a dead one
	first    clientInfo // client points here until the client changes

	id backend.ID

	// What disk holds as of the last write that absorbed this entry. The
	// entry is dirty while it differs from lastSeen and client.
	savedSeen   atomic.Int64
	savedClient atomic.Pointer[clientInfo]
}

// activity is a snapshot of an entry.
type activity struct {
	lastSeen int64
	client   *clientInfo
}

func (e *activityEntry) snapshot() activity {
	return activity{lastSeen: e.lastSeen.Load(), client: e.client.Load()}
}

func (e *activityEntry) dirty() bool {
	return e.lastSeen.Load() != e.savedSeen.Load() || e.client.Load() != e.savedClient.Load()
}

// saved records that disk now holds a.
func (e *activityEntry) saved(a activity) {
	e.savedSeen.Store(a.lastSeen)
	e.savedClient.Store(a.client)
}

// record applies one request's activity. An empty IP or user agent keeps
// the previous one; only a changed client allocates (and a user agent that
// is not valid UTF-8, made valid again on each request).
func (e *activityEntry) record(now int64, c Client) {
	for {
		seen := e.lastSeen.Load()
		if now <= seen || e.lastSeen.CompareAndSwap(seen, now) {
			break
		}
	}
	cur := e.client.Load()
	ip, ua := cur.ip, cur.userAgent
	if c.IP.IsValid() {
		ip = c.IP.Unmap()
	}
	if c.UserAgent != "" && c.UserAgent != ua {
		ua = storedUserAgent(c.UserAgent)
	}
	if ip != cur.ip || ua != cur.userAgent {
		e.client.Store(&clientInfo{ip: ip, userAgent: ua})
	}
}

func newActivityTable() *activityTable {
	t := new(activityTable)
	empty := activityMap{}
	for i := range t.shards {
		t.shards[i].m.Store(&empty)
	}
	return t
}

func (t *activityTable) len() int { return int(t.n.Load()) }

func (t *activityTable) shard(id backend.ID) *activityShard {
	return &t.shards[(uint(id[idTimeBytes])<<8|uint(id[idTimeBytes+1]))%activityShards] // random bytes
}

func (t *activityTable) entry(id backend.ID) *activityEntry {
	if e := (*t.shard(id).m.Load())[activityKey(id)]; e != nil && e.id == id {
		return e
	}
	return nil
}

// activityMemo remembers what the table held for one session, where the
// reader reaches it faster than through the table: a cache entry keeps one,
// because a lookup touches several cache lines (shard, map, group) and
// runs on every cached Load.
type activityMemo struct {
	entry  atomic.Pointer[activityEntry] // the session's entry, once found
	absent atomic.Uint64                 // 1 + the table's adds when it had none; 0: unknown
}

// find is entry with a memo, which may be nil. A remembered entry stays
// good while it is not gone: an entry leaves its map only after gone is
// set, and add never makes a second entry for an ID that has one. A
// remembered absence stays good while no entry was added anywhere: add
// publishes the entry before it counts it, and find reads the count before
// it looks, so an entry the look missed is counted after the count read.
func (t *activityTable) find(id backend.ID, memo *activityMemo) *activityEntry {
	if memo == nil {
		return t.entry(id)
	}
	if e := memo.entry.Load(); e != nil && !e.gone.Load() {
		return e
	}
	adds := t.adds.Load() + 1
	if memo.absent.Load() == adds {
		return nil
	}
	e := t.entry(id)
	if e == nil {
		memo.absent.Store(adds)
		return nil
	}
	memo.entry.Store(e)
	return e
}

// lookup returns the activity of id.
func (t *activityTable) lookup(id backend.ID) (activity, bool) {
	if e := t.entry(id); e != nil {
		return e.snapshot(), true
	}
	return activity{}, false
}

// touch records activity now, read from clk, if id has an entry for a
// session still alive, and returns the entry, or nil if it did not. idle is
// the store's IdleTimeout: an entry whose session went idle is not revived.
// memo is as for find.
func (t *activityTable) touch(id backend.ID, memo *activityMemo, clk *clock, c Client, idle time.Duration) *activityEntry {
	e := t.find(id, memo)
	if e == nil {
		return nil
	}
	deadline := backend.Deadline(e.expires, e.lastSeen.Load(), idle)
	now := clk.nowFor(deadline)
	if now >= deadline {
		return nil
	}
	e.record(now, c)
	if e.gone.Load() {
		return nil
	}
	return e
}

// removals returns id's shard's count of removals, to pass to add.
func (t *activityTable) removals(id backend.ID) uint64 { return t.shard(id).removals.Load() }

// add records activity for id on top of its stored state, creating the
// entry (clean: it matches disk) unless one appeared meanwhile. since is
// what removals returned before the stored state was read: if any removal
// came after, add records nothing and returns false, and the caller must
// read the session again.
func (t *activityTable) add(id backend.ID, now int64, c Client, stored activity, expires int64, since uint64) bool {
	sh := t.shard(id)
	sh.mu.Lock()
	e := (*sh.m.Load())[activityKey(id)]
	if e == nil {
		if sh.removals.Load() != since {
			sh.mu.Unlock()
			return false
		}
		e = &activityEntry{id: id, expires: expires, first: *stored.client}
		stored.client = &e.first
		e.lastSeen.Store(stored.lastSeen)
		e.client.Store(stored.client)
		e.saved(stored)
		if testHookActivityBeforePublish != nil {
			testHookActivityBeforePublish()
		}
		sh.replace(func(m activityMap) { m[activityKey(id)] = e })
		t.n.Add(1)
		t.adds.Add(1) // after publishing: see find
		// remove counts first and looks without the lock: one that came
		// since the check above may have looked before this entry was
		// published, and left. Either it saw the entry (and waits for the
		// lock to remove it) or the count shows it here (sequentially
		// consistent atomics): then the entry goes again.
		if sh.removals.Load() != since {
			e.gone.Store(true)
			sh.replace(func(m activityMap) { delete(m, activityKey(id)) })
			t.n.Add(-1)
			sh.mu.Unlock()
			return false
		}
	}
	sh.mu.Unlock()
	if e.id == id { // else the rare key collision: see activityMap
		e.record(now, c)
	}
	return true
}

// testHookActivityBeforePublish, when set by a test, runs in add between
// its check of the removals count and the publication of its entry.
var testHookActivityBeforePublish func()

// replace publishes a modified copy of the shard's map. Call with mu held.
func (sh *activityShard) replace(change func(activityMap)) {
	old := *sh.m.Load()
	m := make(activityMap, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	change(m)
	sh.m.Store(&m)
}

// remove drops id's entry (its session is gone).
func (t *activityTable) remove(id backend.ID) {
	sh := t.shard(id)
	sh.removals.Add(1) // before looking: see activityShard.removals
	if t.entry(id) == nil {
		return // the common case for sessions without recent activity
	}
	sh.mu.Lock()
	if e := t.entry(id); e != nil {
		e.gone.Store(true)
		sh.replace(func(m activityMap) { delete(m, activityKey(id)) })
		t.n.Add(-1)
	}
	sh.mu.Unlock()
}

// clear removes every entry (after a flush: see storeFeed.Restored).
func (t *activityTable) clear() {
	for i := range t.shards {
		sh := &t.shards[i]
		// Every shard, empty or not: a touch that read its session before
		// the clear must not add an entry after it (see removals).
		sh.removals.Add(1)
		if len(*sh.m.Load()) == 0 {
			continue
		}
		sh.mu.Lock()
		for _, e := range *sh.m.Load() {
			e.gone.Store(true)
			t.n.Add(-1)
		}
		empty := activityMap{}
		sh.m.Store(&empty)
		sh.mu.Unlock()
	}
}

// pendingEntry is a dirty entry and the snapshot a flush writes.
type pendingEntry struct {
	id   backend.ID
	e    *activityEntry
	snap activity
}

// pending returns the dirty entries, for a flush.
func (t *activityTable) pending() []pendingEntry {
	var out []pendingEntry
	for i := range t.shards {
		for _, e := range *t.shards[i].m.Load() {
			if e.dirty() {
				out = append(out, pendingEntry{e.id, e, e.snapshot()})
			}
		}
	}
	return out
}

// dirtyCount counts entries with activity not yet on disk, for Stats.
func (t *activityTable) dirtyCount() int {
	n := 0
	for i := range t.shards {
		for _, e := range *t.shards[i].m.Load() {
			if e.dirty() {
				n++
			}
		}
	}
	return n
}

// sweep removes clean entries last active before cutoff, and entries of
// sessions past their absolute deadline at now, and returns their IDs.
func (t *activityTable) sweep(cutoff, now int64) []backend.ID {
	var swept []backend.ID
	for i := range t.shards {
		sh := &t.shards[i]
		stale := func(e *activityEntry) bool {
			return now >= e.expires || !e.dirty() && e.lastSeen.Load() < cutoff
		}
		var any bool
		for _, e := range *sh.m.Load() {
			if any = stale(e); any {
				break
			}
		}
		if !any {
			continue
		}
		sh.mu.Lock()
		sh.replace(func(m activityMap) {
			for key, e := range m {
				if !stale(e) {
					continue
				}
				e.gone.Store(true)
				if !stale(e) { // touched meanwhile: keep it
					e.gone.Store(false)
					continue
				}
				delete(m, key)
				swept = append(swept, e.id)
				t.n.Add(-1)
			}
		})
		sh.mu.Unlock()
	}
	return swept
}

// overlay applies activity to a session read from disk or cache.
// Activity another instance wrote to a shared backend may be newer than
// this one's: the newer one wins.
func (a activity) overlay(s *Session) {
	if a.lastSeen < s.LastSeen.UnixNano() {
		return
	}
	s.LastSeen = unixNano(a.lastSeen)
	s.IP = a.client.ip
	s.UserAgent = a.client.userAgent
}

// apply writes activity into a record about to be stored.
func (a activity) apply(r *backend.Record) {
	r.LastSeen = max(r.LastSeen, a.lastSeen)
	r.IP, r.UserAgent = a.client.ip, a.client.userAgent
}
