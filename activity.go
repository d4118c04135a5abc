package usersessions

import (
	"net/netip"
	"sync"
	"time"
)

// Activity.
//
// Touch runs on every request, so it must not write to disk. It records the
// latest activity (time, IP, user agent) in memory; a background flush
// writes what changed once per TouchInterval in one transaction, and Load and
// ListByUser overlay the in-memory value so they always report the freshest
// one. A crash loses at most one interval of LastSeen updates, never a
// session.

const activityShards = 64

type activityTable struct {
	shards [activityShards]activityShard
}

type activityShard struct {
	mu sync.Mutex
	m  map[sessionID]*activity
	_  [40]byte // keep shards on separate cache lines
}

// activity is the unflushed state of one session.
type activity struct {
	lastSeen  int64 // Unix nanoseconds
	ip        netip.Addr
	userAgent string
	expires   int64 // the session's absolute deadline, so touch can refuse a dead one
}

func newActivityTable() *activityTable {
	t := new(activityTable)
	for i := range t.shards {
		t.shards[i].m = make(map[sessionID]*activity)
	}
	return t
}

func (t *activityTable) shard(id sessionID) *activityShard {
	return &t.shards[id[0]%activityShards]
}

// lookup returns the pending activity of id.
func (t *activityTable) lookup(id sessionID) (activity, bool) {
	sh := t.shard(id)
	sh.mu.Lock()
	a, ok := sh.m[id]
	var v activity
	if ok {
		v = *a
	}
	sh.mu.Unlock()
	return v, ok
}

// touch records activity if id already has a pending entry for a session
// still alive at now, and reports whether it did. idle is the store's
// IdleTimeout: an entry whose session went idle is not revived.
func (t *activityTable) touch(id sessionID, now int64, c Client, idle time.Duration) bool {
	sh := t.shard(id)
	sh.mu.Lock()
	a, ok := sh.m[id]
	ok = ok && now < a.expires && (idle == 0 || now < a.lastSeen+int64(idle))
	if ok {
		a.merge(now, c)
	}
	sh.mu.Unlock()
	return ok
}

// add records activity on top of base, the session's stored state, unless an
// entry appeared meanwhile, in which case that one is updated.
func (t *activityTable) add(id sessionID, now int64, c Client, base activity) {
	sh := t.shard(id)
	sh.mu.Lock()
	a, ok := sh.m[id]
	if !ok {
		a = &base
		sh.m[id] = a
	}
	a.merge(now, c)
	sh.mu.Unlock()
}

// merge records one request's activity. An empty IP or user agent keeps the
// previous one.
func (a *activity) merge(now int64, c Client) {
	if now > a.lastSeen {
		a.lastSeen = now
	}
	if c.IP.IsValid() {
		a.ip = c.IP.Unmap()
	}
	if c.UserAgent != "" && c.UserAgent != a.userAgent {
		a.userAgent = TruncateUserAgent(c.UserAgent)
	}
}

func (t *activityTable) remove(id sessionID) {
	sh := t.shard(id)
	sh.mu.Lock()
	delete(sh.m, id)
	sh.mu.Unlock()
}

// snapshot copies every pending entry, for a flush.
func (t *activityTable) snapshot() map[sessionID]activity {
	out := make(map[sessionID]activity)
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for id, a := range sh.m {
			out[id] = *a
		}
		sh.mu.Unlock()
	}
	return out
}

// flushed drops the entries that a flush wrote, unless they changed since
// the snapshot (those stay for the next flush).
func (t *activityTable) flushed(written map[sessionID]activity) {
	for id, a := range written {
		t.settle(id, a)
	}
}

// settle drops id's entry after a write absorbed it, unless it changed.
func (t *activityTable) settle(id sessionID, absorbed activity) {
	sh := t.shard(id)
	sh.mu.Lock()
	if cur, ok := sh.m[id]; ok && *cur == absorbed {
		delete(sh.m, id)
	}
	sh.mu.Unlock()
}

func (t *activityTable) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// overlay applies pending activity to a session read from disk or cache.
func (a activity) overlay(s *Session) {
	s.LastSeen = unixNano(a.lastSeen)
	s.IP = a.ip
	s.UserAgent = a.userAgent
}
