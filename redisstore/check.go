package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/redis/rueidis"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// maxProblems bounds the problems Check reports.
const maxProblems = 100

// checkPage is how many sessions Check and reindex read per round.
const checkPage = 256

// eachPage calls fn with the IDs of P:all, a page at a time, in ID order.
// Members that are not IDs are reported to bad.
func (b *Backend) eachPage(ctx context.Context, bad func(member string), fn func(ids []backend.ID) error) error {
	start := "-"
	for {
		members, err := b.client.Do(ctx, b.client.B().Zrange().Key(b.allKey()).Min(start).Max("+").Bylex().Limit(0, checkPage).Build()).AsStrSlice()
		if err != nil {
			return err
		}
		ids := make([]backend.ID, 0, len(members))
		for _, m := range members {
			var id backend.ID
			if len(m) != len(id) {
				bad(m)
				continue
			}
			copy(id[:], m)
			ids = append(ids, id)
		}
		if err := fn(ids); err != nil {
			return err
		}
		if len(members) < checkPage {
			return nil
		}
		start = "(" + members[len(members)-1]
	}
}

// reindex recomputes every record's deadline for the idle timeout in force
// (an Update that changes nothing rewrites the deadline and its scores),
// and returns how many records it visited. Open calls it, under its lock,
// when the idle timeout changed: the one full pass over the data.
func (b *Backend) reindex(ctx context.Context) (int, error) {
	n := 0
	err := b.eachPage(ctx, func(string) {}, func(ids []backend.ID) error {
		for _, id := range ids {
			_, err := b.Update(ctx, id, func(*backend.Record) error { return nil }, nil)
			switch {
			case err == nil:
				n++
			case errors.Is(err, usersessions.ErrNotFound):
			case errors.Is(err, usersessions.ErrCorrupt):
				b.log.Error("redisstore: reindex skips an unreadable record", "prefix", b.prefix, "err", err)
			default:
				return err
			}
		}
		return nil
	})
	return n, err
}

// checker collects Check's problems.
type checker struct {
	problems []error
	more     bool
}

func (c *checker) add(format string, args ...any) {
	if len(c.problems) >= maxProblems {
		c.more = true
		return
	}
	c.problems = append(c.problems, fmt.Errorf("redisstore: "+format+": %w", append(args, usersessions.ErrCorrupt)...))
}

// Check verifies the invariants of the data under the prefix, reading
// every session (an operator's tool, not for a request path): every ID in
// P:all has a locator leading to a readable record of its group, whose
// deadline agrees with its times and the stored idle timeout, whose
// user's index holds it at that deadline, and whose group's cleanup score
// is not later; every index entry leads to such a record; the stored idle
// timeout is the one in force here. Each problem wraps ErrCorrupt.
func (b *Backend) Check(ctx context.Context) error {
	if b.closed.Load() {
		return usersessions.ErrClosed
	}
	var c checker
	stored, err := b.client.Do(ctx, b.client.B().Hget().Key(b.settingsKey()).Field("idle").Build()).ToString()
	switch {
	case rueidis.IsRedisNil(err):
		c.add("prefix %s: no stored idle timeout (never opened, or the server lost its data)", b.prefix)
	case err != nil:
		return b.mapErr("check", err)
	case stored != strconv.FormatInt(b.idle.Load(), 10):
		c.add("prefix %s: stored idle timeout %s ns, this instance uses %v (instances disagree)", b.prefix, stored, b.idleNow())
	}
	listed := map[backend.ID]string{} // ID -> its group's tag
	err = b.eachPage(ctx, func(m string) { c.add("P:all member %q is not an ID", m) }, func(ids []backend.ID) error {
		return b.checkPage(ctx, ids, listed, &c)
	})
	if err == nil {
		err = b.checkIndexes(ctx, listed, &c)
	}
	if err != nil {
		return b.mapErr("check", err)
	}
	if c.more {
		c.problems = append(c.problems, fmt.Errorf("redisstore: more problems: %w", usersessions.ErrCorrupt))
	}
	return errors.Join(c.problems...)
}

// checkPage checks the sessions ids.
func (b *Backend) checkPage(ctx context.Context, ids []backend.ID, listed map[backend.ID]string, c *checker) error {
	locs, err := b.locateMany(ctx, ids, false)
	if err != nil {
		return err
	}
	type probe struct {
		id backend.ID
		g  group
		at int // index of its first step
	}
	var probes []probe
	var steps []step
	for i, id := range ids {
		l, ok := locs[i]
		switch {
		case !ok:
			c.add("session %s: in P:all without a readable locator", id)
			continue
		case l.moving():
			continue // a move in flight
		}
		g := b.groupOf(l.user, id)
		probes = append(probes, probe{id, g, len(steps)})
		steps = append(steps,
			plain(b.client.B().Hgetall().Key(g.rec(id)).Build()),
			plain(b.client.B().Zscore().Key(g.idx()).Member(id.String()).Build()),
			plain(b.client.B().Zscore().Key(b.dueKey()).Member(g.tag).Build()))
	}
	res := b.pipe(ctx, steps...)
	idle := b.idleNow()
	for _, p := range probes {
		m, err := res[p.at].AsStrMap()
		if err != nil {
			return err
		}
		if len(m) == 0 {
			c.add("session %s: its locator leads to no record", p.id)
			continue
		}
		var r backend.Record
		if err := b.parseIn(p.g, p.id, fromMap(m), &r, false); err != nil {
			c.problems = append(c.problems, err)
			continue
		}
		listed[p.id] = p.g.tag
		d := r.Deadline(idle)
		if m["d"] != timeText(d) {
			c.add("session %s: deadline %q disagrees with its times and the idle timeout (%s)", p.id, m["d"], timeText(d))
		}
		want := parseScore(score(d))
		if !p.g.anonymous() {
			if s, err := res[p.at+1].AsFloat64(); err != nil || math.Abs(s-want) > 2 {
				c.add("session %s: its user's index has it at %v, not at its deadline %v", p.id, s, want)
			}
		}
		if s, err := res[p.at+2].AsFloat64(); err != nil || s > want+2 {
			c.add("session %s: cleanup would not look at it before %v (deadline %v)", p.id, s, want)
		}
	}
	return nil
}

// checkIndexes checks that every entry of the users' indexes reached leads
// to a record of that user.
func (b *Backend) checkIndexes(ctx context.Context, listed map[backend.ID]string, c *checker) error {
	tags := map[string]bool{}
	for _, tag := range listed {
		if tag[0] == 'u' {
			tags[tag] = true
		}
	}
	for tag := range tags {
		g, _ := b.groupOfTag(tag)
		ids, err := b.client.Do(ctx, b.client.B().Zrangebyscore().Key(g.idx()).Min("-inf").Max("+inf").Build()).AsStrSlice()
		if err != nil {
			return err
		}
		for _, text := range ids {
			id, ok := backend.ParseID(text)
			if !ok || listed[id] != tag {
				c.add("user %q: index entry %q leads to no record of the user", g.user, text)
			}
		}
	}
	return nil
}
