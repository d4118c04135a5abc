package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/redis/rueidis"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// Writes. Every change of a group is one script (scripts.go); what lives
// outside the group (the locator of a user's session, P:all, P:due) is
// written in the same round trip, in an order that a crash between two
// commands can only leave harmless leftovers behind:
//
//   - an entry is added to P:due before the script and again after it (a
//     cleanup that ran in between cannot have removed it for good), and P:due
//     only ever errs early, which costs cleanup a look, never a record;
//   - a locator and P:all are written before the record (a leftover
//     locator leads to no record: ErrNotFound), and removed after it.

// userFlag is the scripts' "user group" argument.
func userFlag(g group) string {
	if g.anonymous() {
		return ""
	}
	return "1"
}

// dueLT lowers g's cleanup score in P:due to s, or adds g with it.
func (b *Backend) dueLT(g group, s string) step {
	return plain(b.client.B().Zadd().Key(b.dueKey()).Lt().ScoreMember().ScoreMember(parseScore(s), g.tag).Build())
}

// parseScore reads a score this package wrote.
func parseScore(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// firstErr returns the first error among results.
func firstErr(res []rueidis.RedisResult) error {
	for _, r := range res {
		if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
			return err
		}
	}
	return nil
}

// Create stores the new record r in one round trip; it fails if r.ID
// exists. With a limit (MaxPerUser) it first reads the user's group, then
// writes the record and removes the least recent live sessions beyond the
// limit in one script, which does nothing if the group changed since it
// was read, and then is run again on a new read. It sends no change
// notice, unless a limit removes other records.
func (b *Backend) Create(ctx context.Context, r *backend.Record, limit *backend.UserLimit) ([]backend.Record, error) {
	if b.closed.Load() {
		return nil, usersessions.ErrClosed
	}
	g := b.groupOf(r.UserID, r.ID)
	if limit == nil || limit.Max <= 0 || r.UserID == "" {
		evicted, _, err := b.insert(ctx, g, r, "", nil, backend.Ending{}, "new", true)
		return evicted, err
	}
	return b.createLimited(ctx, g, r, limit)
}

// createLimited is Create under a MaxPerUser limit.
func (b *Backend) createLimited(ctx context.Context, g group, r *backend.Record, limit *backend.UserLimit) ([]backend.Record, error) {
	res := b.pipe(ctx,
		plain(b.setLoc(r)),
		plain(b.addAll(r.ID)),
		b.call(sReadGroup, []string{g.idx()}, g.recPrefix()))
	if err := firstErr(res); err != nil {
		return nil, b.mapErr("create", err)
	}
	if rueidis.IsRedisNil(res[0].Error()) {
		return nil, fmt.Errorf("redisstore: create %s: the ID exists", r.ID)
	}
	arr, _ := res[2].ToArray()
	for range maxAttempts {
		if len(arr) == 0 {
			return nil, fmt.Errorf("redisstore: create: empty reply")
		}
		snapshot, recs, _ := groupReply(b, g, arr)
		evicted, status, err := b.insert(ctx, g, r, snapshot, victimsOf(recs, r, limit), limit.Ending, "new", false)
		if status != "retry" {
			return evicted, err
		}
		// The group changed since it was read: read it again.
		if err := b.retryRead(ctx, func() error {
			var err error
			arr, err = b.eval(ctx, sReadGroup, []string{g.idx()}, g.recPrefix()).ToArray()
			return err
		}); err != nil {
			return nil, b.mapErr("create", err)
		}
	}
	return nil, fmt.Errorf("redisstore: create %s: %d attempts lost to concurrent sign-ins of %q", r.ID, maxAttempts, r.UserID)
}

// victimsOf chooses what a limit removes when r joins a group holding
// recs: the least recent of the live others beyond limit.Max.
func victimsOf(recs []backend.Record, r *backend.Record, limit *backend.UserLimit) []backend.ID {
	if limit == nil || limit.Max <= 0 {
		return nil
	}
	var live []*backend.Record
	for i := range recs {
		if o := &recs[i]; o.ID != r.ID && limit.Live(o) {
			live = append(live, o)
		}
	}
	excess := len(live) + 1 - limit.Max
	if excess <= 0 {
		return nil
	}
	slices.SortFunc(live, func(x, y *backend.Record) int { return cmp.Compare(limit.Recency(x), limit.Recency(y)) })
	ids := make([]backend.ID, excess)
	for i := range ids {
		ids[i] = live[i].ID
	}
	return ids
}

// setLoc is the command that writes r's locator, only if there is none.
func (b *Backend) setLoc(r *backend.Record) rueidis.Completed {
	set := b.client.B().Set().Key(b.loc(r.ID)).Value(locatorOf(r.UserID).String()).Nx()
	if t := ttl(r); t != "0" {
		return set.PxMilliseconds(parseInt(t)).Build()
	}
	return set.Build()
}

func (b *Backend) addAll(id backend.ID) rueidis.Completed {
	return b.client.B().Zadd().Key(b.allKey()).ScoreMember().ScoreMember(0, string(id[:])).Build()
}

func parseInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// insert writes r into g with the create script (mode "new" or "force"),
// removing victims as end says when the group still holds snapshot (""
// for no check), and with withLoc its locator and P:all entry too: on a
// single server in the same script, in a cluster in the same round trip
// (see the top of this file). It returns the victims removed and the
// script's status ("ok", "retry").
func (b *Backend) insert(ctx context.Context, g group, r *backend.Record, snapshot string, victims []backend.ID,
	end backend.Ending, mode string, withLoc bool) ([]backend.Record, string, error) {
	d := r.Deadline(b.idleNow())
	s := score(d)
	e := ending(g, end)
	whole, raw, tag := "", "", ""
	if withLoc && b.client.Mode() != rueidis.ClientModeCluster {
		whole, raw = "1", string(r.ID[:])
	}
	if len(victims) > 0 {
		tag = b.tag // for the victims' notice
	} else {
		e[0] = "" // no ending: every byte counts (see scriptCreate)
	}
	keys := []string{g.idx(), g.hist()}
	args := []string{r.ID.String(), userFlag(g), mode, snapshot, s, ttl(r), tag, whole, raw}
	args = append(args, e...)
	args = append(args, recordArgs(r, d)...)
	for _, v := range victims {
		args = append(args, v.String())
	}
	steps := []step{b.call(sCreate, keys, args...)}
	locAt := -1
	if whole == "" { // a cluster, or no locator to write: the same round trip
		due := []step{b.dueLT(g, s)}
		if e[3] != "" {
			due = append(due, b.dueLT(g, e[3]))
		}
		before := due
		if withLoc {
			locAt = len(due)
			before = slices.Concat(due, []step{plain(b.setLoc(r)), plain(b.addAll(r.ID))})
		}
		steps = slices.Concat(before, steps, due)
	}
	at := slices.IndexFunc(steps, func(st step) bool { return st.s == sCreate })
	res := b.pipe(ctx, steps...)
	if err := firstErr(res); err != nil {
		return nil, "", b.mapErr("create", err)
	}
	arr, err := res[at].ToArray()
	if err != nil || len(arr) == 0 {
		return nil, "", b.mapErr("create", fmt.Errorf("reply %v", err))
	}
	status, _ := arr[0].ToString()
	switch {
	case status == "exists", status == "taken":
		return nil, status, fmt.Errorf("redisstore: create %s: the ID exists", r.ID)
	case status != "ok":
		return nil, status, nil
	case locAt >= 0 && rueidis.IsRedisNil(res[locAt].Error()):
		// Another session has this ID in another group: take ours back.
		_, _, _ = b.deleteIn(ctx, g, r.ID, backend.Ending{})
		return nil, status, fmt.Errorf("redisstore: create %s: the ID exists", r.ID)
	}
	evicted, _ := b.records(g, arr[1:])
	b.forget(ctx, g, idsOf(evicted))
	return evicted, status, nil
}

func idsOf(recs []backend.Record) []backend.ID {
	ids := make([]backend.ID, len(recs))
	for i := range recs {
		ids[i] = recs[i].ID
	}
	return ids
}

// forget removes what lives outside group g of sessions g no longer holds:
// their P:all entries and, for a user's group, their locators if they
// still point at it (an anonymous session's went with it). A failure is
// logged: the sessions are gone, and what is left leads to nothing.
func (b *Backend) forget(ctx context.Context, g group, ids []backend.ID) {
	if len(ids) == 0 {
		return
	}
	if err := firstErr(b.pipe(context.WithoutCancel(ctx), b.forgetSteps(g, ids)...)); err != nil {
		b.log.Warn("redisstore: removed sessions left locators behind (harmless; Check reports them)", "prefix", b.prefix, "err", err)
	}
}

// forgetSteps are the commands of forget.
func (b *Backend) forgetSteps(g group, ids []backend.ID) []step {
	if len(ids) == 0 {
		return nil
	}
	members := make([]string, len(ids))
	for i, id := range ids {
		members[i] = string(id[:])
	}
	steps := []step{plain(b.client.B().Zrem().Key(b.allKey()).Member(members...).Build())}
	if !g.anonymous() {
		want := locatorOf(g.user).String()
		for _, id := range ids {
			steps = append(steps, b.call(sCAS, []string{b.loc(id)}, want, "", ""))
		}
	}
	return steps
}

// Update reads the record of id, calls change, and writes the result only
// if the record is still the one it read (else it starts again), with its
// deadline recomputed and its change notice, in one script. A change of
// UserID moves the record to the new user's group (move.go). It returns
// ErrNotFound when there is no record.
func (b *Backend) Update(ctx context.Context, id backend.ID, change func(r *backend.Record) error, limit *backend.UserLimit) ([]backend.Record, error) {
	if b.closed.Load() {
		return nil, usersessions.ErrClosed
	}
	for range maxAttempts {
		l, err := b.locate(ctx, id, false)
		if err != nil {
			return nil, err
		}
		if l.moving() {
			if err := b.awaitMove(ctx, id, l); err != nil {
				return nil, err
			}
			continue
		}
		g := b.groupOf(l.user, id)
		var m map[string]string
		if err := b.retryRead(ctx, func() error {
			var err error
			m, err = b.client.Do(ctx, b.client.B().Hgetall().Key(g.rec(id)).Build()).AsStrMap()
			return err
		}); err != nil {
			return nil, b.mapErr("update", err)
		}
		if len(m) == 0 {
			if err := b.leadsNowhere(ctx, id, l); err != nil {
				return nil, err
			}
			continue
		}
		var r backend.Record
		if err := b.parseIn(g, id, fromMap(m), &r, true); err != nil {
			return nil, err
		}
		version, oldTTL := m["n"], ttl(&r)
		if version == "" {
			return nil, fmt.Errorf("redisstore: record %s: no version: %w", id, usersessions.ErrCorrupt)
		}
		if err := change(&r); err != nil {
			return nil, err
		}
		var evicted []backend.Record
		if r.UserID == g.user {
			err = b.rewrite(ctx, g, l, id, version, &r)
		} else {
			evicted, err = b.move(ctx, id, l, version, oldTTL, &r, limit)
		}
		if !errors.Is(err, errMoved) {
			return evicted, err
		}
	}
	return nil, fmt.Errorf("redisstore: update %s: %d attempts lost to concurrent changes", id, maxAttempts)
}

// leadsNowhere handles a locator l of id that led to no record: it returns
// ErrNotFound if l is still id's locator (removing that leftover), or nil
// when it changed meanwhile (the caller starts again).
func (b *Backend) leadsNowhere(ctx context.Context, id backend.ID, l locator) error {
	now, err := b.locate(ctx, id, false)
	switch {
	case errors.Is(err, usersessions.ErrNotFound):
		return usersessions.ErrNotFound
	case err != nil:
		return err
	case now.String() != l.String():
		return nil
	}
	b.forget(ctx, b.groupOf(l.user, id), []backend.ID{id})
	return usersessions.ErrNotFound
}

// rewrite writes r over id's record in g if it is still at version, and
// refreshes the locator's TTL. It returns errMoved when the record changed
// or went meanwhile.
func (b *Backend) rewrite(ctx context.Context, g group, l locator, id backend.ID, version string, r *backend.Record) error {
	d := r.Deadline(b.idleNow())
	s, t := score(d), ttl(r)
	args := append([]string{g.recPrefix(), id.String(), userFlag(g), version, s, t, b.channel(), b.tag}, recordArgs(r, d)...)
	res := b.pipe(ctx,
		b.dueLT(g, s),
		b.call(sUpdate, []string{g.idx()}, args...),
		b.dueLT(g, s),
		b.call(sCAS, []string{b.loc(id)}, l.String(), l.String(), t))
	if err := firstErr(res); err != nil {
		return b.mapErr("update", err)
	}
	if status, _ := res[1].ToString(); status != "ok" {
		return errMoved
	}
	return nil
}

// Touch writes activity: the locators (from the client-side cache), then
// one script per group, all in one round trip each. LastSeen moves only
// forward, the client is the one of the newest activity, the deadline
// follows. Missing records are skipped; a record missing where a cached
// locator said is looked for again by a fresh locator. It sends no change
// notice.
func (b *Backend) Touch(ctx context.Context, acts []backend.Activity) error {
	if b.closed.Load() {
		return usersessions.ErrClosed
	}
	// One activity per ID, the newest.
	newest := make(map[backend.ID]backend.Activity, len(acts))
	for _, a := range acts {
		if o, ok := newest[a.ID]; !ok || a.LastSeen > o.LastSeen {
			newest[a.ID] = a
		}
	}
	missing, err := b.touch(ctx, newest, true)
	if err != nil || len(missing) == 0 {
		return err
	}
	again := make(map[backend.ID]backend.Activity, len(missing))
	for _, id := range missing {
		again[id] = newest[id]
	}
	_, err = b.touch(ctx, again, false)
	return err
}

// touchBatch bounds the records of one touch script.
const touchBatch = 200

// touch writes acts and returns the IDs whose records were not where the
// locator said.
func (b *Backend) touch(ctx context.Context, acts map[backend.ID]backend.Activity, cached bool) ([]backend.ID, error) {
	ids := make([]backend.ID, 0, len(acts))
	for id := range acts {
		ids = append(ids, id)
	}
	locs, err := b.locateMany(ctx, ids, cached)
	if err != nil {
		return nil, err
	}
	idle := b.idleNow()
	byGroup := map[string][]string{} // tag -> args
	groups := map[string]group{}
	for i, id := range ids {
		l, ok := locs[i]
		if !ok || l.moving() {
			continue // gone, or moving: activity never brings a session back
		}
		g := b.groupOf(l.user, id)
		a := acts[id]
		idl, isc := "", ""
		if idle > 0 {
			d := (&backend.Record{Expires: math.MaxInt64, LastSeen: a.LastSeen}).Deadline(idle)
			idl, isc = timeText(d), score(d)
		}
		ip := ""
		if a.IP.IsValid() {
			ip = a.IP.WithZone("").String()
		}
		groups[g.tag] = g
		byGroup[g.tag] = append(byGroup[g.tag], id.String(), timeText(a.LastSeen), idl, isc, ip, a.UserAgent)
	}
	var steps []step
	for tag, args := range byGroup {
		g := groups[tag]
		for len(args) > 0 {
			n := min(len(args), 6*touchBatch)
			steps = append(steps, b.call(sTouch, []string{g.idx()}, append([]string{g.recPrefix(), userFlag(g)}, args[:n]...)...))
			args = args[n:]
		}
	}
	var missing []backend.ID
	for _, r := range b.pipe(ctx, steps...) {
		list, err := r.AsStrSlice()
		if err != nil {
			return nil, b.mapErr("touch", err)
		}
		for _, s := range list {
			if id, ok := backend.ParseID(s); ok {
				missing = append(missing, id)
			}
		}
	}
	return missing, nil
}

// locateMany reads the locators of ids in one round trip; an ID without
// one (or with one this version cannot read) is left out of the map.
func (b *Backend) locateMany(ctx context.Context, ids []backend.ID, cached bool) (map[int]locator, error) {
	var res []rueidis.RedisResult
	if cached {
		cmds := make([]rueidis.CacheableTTL, len(ids))
		for i, id := range ids {
			cmds[i] = rueidis.CT(b.client.B().Get().Key(b.loc(id)).Cache(), locCacheTTL)
		}
		res = b.client.DoMultiCache(ctx, cmds...)
	} else {
		cmds := make(rueidis.Commands, len(ids))
		for i, id := range ids {
			cmds[i] = b.client.B().Get().Key(b.loc(id)).Build()
		}
		res = b.client.DoMulti(ctx, cmds...)
	}
	if err := firstErr(res); err != nil {
		return nil, b.mapErr("locate", err)
	}
	out := make(map[int]locator, len(ids))
	for i, r := range res {
		if s, err := r.ToString(); err == nil {
			if l, ok := parseLocator(s); ok {
				out[i] = l
			}
		}
	}
	return out, nil
}

// deleteIn removes id's record from g as end says (history, notice) and
// returns it, found false when there was none. A record that cannot be
// read is removed too and returned with only its ID.
func (b *Backend) deleteIn(ctx context.Context, g group, id backend.ID, end backend.Ending) (backend.Record, bool, error) {
	third := g.idx()
	if g.anonymous() {
		third = b.loc(id)
	}
	e := ending(g, end)
	args := append([]string{g.recPrefix(), id.String(), userFlag(g), b.channel(), b.tag}, e...)
	steps := []step{b.call(sDelete, []string{g.idx(), g.hist(), third}, args...)}
	if e[3] != "" {
		steps = []step{b.dueLT(g, e[3]), steps[0], b.dueLT(g, e[3])}
	}
	res := b.pipe(ctx, steps...)
	if err := firstErr(res); err != nil {
		return backend.Record{ID: id}, false, b.mapErr("delete", err)
	}
	reply := res[len(steps)/2]
	if rueidis.IsRedisNil(reply.Error()) {
		return backend.Record{ID: id}, false, nil
	}
	fields, _ := reply.AsStrSlice()
	var r backend.Record
	if err := b.parseIn(g, id, fromPairs(fields), &r, true); err != nil {
		r = backend.Record{ID: id}
	}
	return r, true, nil
}

// Delete removes the record of id (only if it belongs to *owner when owner
// is not nil: then it is looked for in the owner's group alone), keeps it
// in the history as end says, sends the change notice, and returns it; or
// returns ErrNotFound. The script removes the record whatever its content,
// so an unreadable record is removed too (returned with only its ID).
func (b *Backend) Delete(ctx context.Context, id backend.ID, owner *string, end backend.Ending) (backend.Record, error) {
	if b.closed.Load() {
		return backend.Record{ID: id}, usersessions.ErrClosed
	}
	if owner != nil {
		g := b.groupOf(*owner, id)
		r, found, err := b.deleteIn(ctx, g, id, end)
		if err == nil && !found {
			err = usersessions.ErrNotFound
		}
		if err != nil {
			return backend.Record{ID: id}, err
		}
		b.forget(ctx, g, []backend.ID{id})
		return r, nil
	}
	for range maxAttempts {
		l, err := b.locate(ctx, id, false)
		if err != nil {
			return backend.Record{ID: id}, err
		}
		if l.moving() {
			if err := b.awaitMove(ctx, id, l); err != nil {
				return backend.Record{ID: id}, err
			}
			continue
		}
		g := b.groupOf(l.user, id)
		r, found, err := b.deleteIn(ctx, g, id, end)
		if err != nil {
			return backend.Record{ID: id}, err
		}
		if found {
			b.forget(ctx, g, []backend.ID{id})
			return r, nil
		}
		if err := b.leadsNowhere(ctx, id, l); err != nil {
			return backend.Record{ID: id}, err
		}
	}
	return backend.Record{ID: id}, fmt.Errorf("redisstore: delete %s: %d attempts lost to concurrent changes", id, maxAttempts)
}

// DeleteByUser removes every record of userID but keep in one script on the
// user's group, keeps them in the history as end says, sends the change
// notices, and returns them.
func (b *Backend) DeleteByUser(ctx context.Context, userID string, keep backend.ID, end backend.Ending) ([]backend.Record, error) {
	if b.closed.Load() {
		return nil, usersessions.ErrClosed
	}
	if userID == "" {
		return nil, nil
	}
	g := b.userGroup(userID)
	keepText := ""
	if keep != (backend.ID{}) {
		keepText = keep.String()
	}
	e := ending(g, end)
	steps := []step{b.call(sDeleteUser, []string{g.idx(), g.hist()}, append([]string{g.recPrefix(), keepText, b.channel(), b.tag}, e...)...)}
	if e[3] != "" {
		steps = []step{b.dueLT(g, e[3]), steps[0], b.dueLT(g, e[3])}
	}
	res := b.pipe(ctx, steps...)
	if err := firstErr(res); err != nil {
		return nil, b.mapErr("delete by user", err)
	}
	arr, _ := res[len(steps)/2].ToArray()
	recs, _ := b.records(g, arr)
	b.forget(ctx, g, idsOf(recs))
	return recs, nil
}
