package redisstore

import (
	"context"
	"strconv"

	"github.com/redis/rueidis"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/backendkit"
)

// Cleanup.
//
// P:due holds every group that may have something due, scored by the
// earliest moment it may: its first deadline, or its first history entry's
// keep-until. Every write lowers the score of the group it writes (ZADD LT,
// before and after its script), and cleanup raises it to what the group
// holds after its pass, only if nothing lowered it meanwhile (scriptDueSet).
// So a score is never later than the group's first due moment, and
// cleanup reads only groups with something due, and in them only what is
// due: O(expired), whatever the number of sessions.
//
// Redis's own expiry (ttl, a day after a record's absolute lifetime) is
// the backstop for records no cleanup removed; their index entries are
// due by then, so the next cleanup drops them, with their locator and
// P:all entry.

// DefaultExpiredLimit is DeleteExpired's batch when ExpiredQuery.Limit is 0.
const DefaultExpiredLimit = backendkit.DefaultExpiredLimit

// duePage is how many groups one round of DeleteExpired reads.
const duePage = 200

// candidate is a group's cleanup plan.
type candidate struct {
	g      group
	score  string   // its score in P:due when read
	chosen []string // IDs to remove (due ones the Store did not veto, unreadable and vanished ones)
}

// DeleteExpired removes up to q.Limit records due under q (deadline <=
// q.Now; an idle deadline only when also q.IdleGrace past) that q.Keep does
// not veto, with history and change notices, and drops history entries
// kept past their time. Every instance may run it at once: each script
// checks again what it removes, so two instances never both remove (or
// both report) one record.
func (b *Backend) DeleteExpired(ctx context.Context, q backend.ExpiredQuery) ([]backend.Record, bool, error) {
	if b.closed.Load() {
		return nil, false, usersessions.ErrClosed
	}
	limit, cut := backendkit.Expiry(q)
	// Scores are microseconds rounded down: look one millisecond further,
	// the scripts check exactly.
	maxScore := strconv.FormatInt(parseInt(score(q.Now))+1000, 10)
	var removed []backend.Record
	visited := map[string]bool{}
	offset := int64(0)
	for len(removed) < limit {
		page, err := b.dueGroups(ctx, maxScore, offset)
		if err != nil {
			return removed, false, err
		}
		fresh := page[:0]
		for _, c := range page {
			if !visited[c.g.tag] {
				visited[c.g.tag] = true
				fresh = append(fresh, c)
			}
		}
		if len(fresh) == 0 {
			break
		}
		recs, stay, more, err := b.expireGroups(ctx, fresh, q, cut, limit-len(removed))
		removed = append(removed, recs...)
		if err != nil || more {
			return removed, more, err
		}
		offset += stay + int64(len(page)-len(fresh))
		if len(page) < duePage {
			break
		}
	}
	return removed, len(removed) >= limit, nil
}

// dueGroups reads a page of P:due up to maxScore.
func (b *Backend) dueGroups(ctx context.Context, maxScore string, offset int64) ([]candidate, error) {
	var pairs []rueidis.ZScore
	err := b.retryRead(ctx, func() error {
		var err error
		pairs, err = b.client.Do(ctx, b.client.B().Zrange().Key(b.dueKey()).Min("-inf").Max(maxScore).Byscore().
			Limit(offset, duePage).Withscores().Build()).AsZScores()
		return err
	})
	if err != nil {
		return nil, b.mapErr("delete expired", err)
	}
	out := make([]candidate, 0, len(pairs))
	for _, p := range pairs {
		g, ok := b.groupOfTag(p.Member)
		if !ok {
			b.log.Warn("redisstore: unreadable entry in the cleanup index ignored", "prefix", b.prefix, "entry", p.Member)
			continue
		}
		out = append(out, candidate{g: g, score: strconv.FormatFloat(p.Score, 'f', -1, 64)})
	}
	return out, nil
}

// expireGroups runs cleanup on a page of groups, removing at most room
// records: it lists their candidates (one round trip), lets the Store veto,
// removes the rest (one round trip), then updates P:due, locators and
// P:all (one round trip). It returns what it removed, how many of the
// groups are still due (vetoed or left for the next call), and more = true
// when it stopped at room.
func (b *Backend) expireGroups(ctx context.Context, page []candidate, q backend.ExpiredQuery, cut int64, room int) ([]backend.Record, int64, bool, error) {
	t := expiryTimes{now: timeText(q.Now), cut: timeText(cut), maxScore: strconv.FormatInt(parseInt(score(q.Now))+1000, 10)}
	more, err := b.chooseExpired(ctx, page, q, t, room)
	if err != nil {
		return nil, 0, false, err
	}
	removed, stay, after, err := b.applyExpired(ctx, page, q, t)
	if err != nil {
		return removed, 0, false, err
	}
	if err := firstErr(b.pipe(context.WithoutCancel(ctx), after...)); err != nil {
		b.log.Warn("redisstore: cleanup could not update its index (the next cleanup looks again)", "prefix", b.prefix, "err", err)
	}
	return removed, stay, more, nil
}

// expiryTimes are the moments of one cleanup pass as the scripts take
// them: now, the idle-grace cut, and the highest P:due score still due.
type expiryTimes struct {
	now, cut, maxScore string
}

// chooseExpired lists the candidates of each group (one round trip) and
// fills its chosen IDs: what the Store does not veto, at most room records
// in all (index entries of vanished records, flag "g", do not count). It
// reports more = true when it stopped at room.
func (b *Backend) chooseExpired(ctx context.Context, page []candidate, q backend.ExpiredQuery, t expiryTimes, room int) (bool, error) {
	scans := make([]step, len(page))
	for i, c := range page {
		scans[i] = b.call(sExpireScan, []string{c.g.idx(), b.locOfAnon(c.g)}, c.g.recPrefix(), userFlag(c.g), anonID(c.g), t.now, t.maxScore, t.cut)
	}
	more := false
	for i, r := range b.pipe(ctx, scans...) {
		flags, err := r.AsStrSlice()
		if err != nil {
			return false, b.mapErr("delete expired", err)
		}
		for j := 0; j+1 < len(flags); j += 2 {
			id, flag := flags[j], flags[j+1]
			if flag == "y" {
				if parsed, ok := backend.ParseID(id); ok && q.Keep != nil && q.Keep(parsed) {
					continue
				}
			}
			if flag != "g" {
				if room == 0 {
					more = true
					continue
				}
				room--
			}
			page[i].chosen = append(page[i].chosen, id)
		}
	}
	return more, nil
}

// applyExpired removes the chosen IDs of each group (one round trip). It
// returns the records removed, how many groups are still due, and the
// steps that then update P:due, locators and P:all.
func (b *Backend) applyExpired(ctx context.Context, page []candidate, q backend.ExpiredQuery, t expiryTimes) ([]backend.Record, int64, []step, error) {
	applies := make([]step, len(page))
	for i, c := range page {
		e := ending(c.g, backend.Ending{At: q.Now, Keep: q.History}) // reasons are the script's
		args := append([]string{c.g.recPrefix(), userFlag(c.g), t.now, t.cut, b.channel(), b.tag, e[3], e[4], score(q.Now), anonID(c.g)}, c.chosen...)
		applies[i] = b.call(sExpireApply, []string{c.g.idx(), c.g.hist(), b.locOfAnon(c.g)}, args...)
	}
	var removed []backend.Record
	var after []step
	stay := int64(0)
	for i, r := range b.pipe(ctx, applies...) {
		arr, err := r.ToArray()
		if err != nil || len(arr) == 0 {
			return removed, 0, nil, b.mapErr("delete expired", errOr(err, errEntry))
		}
		g := page[i].g
		earliest, _ := arr[0].ToString()
		if earliest != "" && parseScore(earliest) <= parseScore(t.maxScore) {
			stay++
		}
		recs, gone := b.expiredReply(g, arr[1:])
		removed = append(removed, recs...)
		after = append(after, b.call(sDueSet, []string{b.dueKey()}, g.tag, page[i].score, earliest))
		after = append(after, b.forgetSteps(g, gone)...)
	}
	return removed, stay, after, nil
}

// expiredReply reads the (ID or record, flag) pairs of one group's apply
// script: the records it removed, and the IDs of all it removed, with the
// index entries of vanished records (flag "g").
func (b *Backend) expiredReply(g group, pairs []rueidis.RedisMessage) ([]backend.Record, []backend.ID) {
	var removed []backend.Record
	var gone []backend.ID
	for j := 0; j+1 < len(pairs); j += 2 {
		if s, _ := pairs[j+1].ToString(); s == "g" {
			text, _ := pairs[j].ToString()
			if id, ok := backend.ParseID(text); ok {
				gone = append(gone, id)
			}
			continue
		}
		recs, _ := b.records(g, pairs[j:j+2])
		removed = append(removed, recs...)
		gone = append(gone, recs[0].ID)
	}
	return removed, gone
}

// locOfAnon is the locator key of an anonymous group's session (its
// scripts remove it with the record), or for a user's group its index key
// (a key of the same slot, unused).
func (b *Backend) locOfAnon(g group) string {
	if g.anonymous() {
		return g.base + "loc:{" + g.tag + "}"
	}
	return g.idx()
}

// anonID is the ID of an anonymous group's session, "" for a user's group.
func anonID(g group) string {
	if g.anonymous() {
		return g.tag[1:]
	}
	return ""
}
