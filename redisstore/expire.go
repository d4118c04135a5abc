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
	now, cutText, maxScore := timeText(q.Now), timeText(cut), strconv.FormatInt(parseInt(score(q.Now))+1000, 10)
	scans := make([]step, len(page))
	for i, c := range page {
		scans[i] = b.call(sExpireScan, []string{c.g.idx(), b.locOfAnon(c.g)}, c.g.recPrefix(), userFlag(c.g), anonID(c.g), now, maxScore, cutText)
	}
	more := false
	for i, r := range b.pipe(ctx, scans...) {
		flags, err := r.AsStrSlice()
		if err != nil {
			return nil, 0, false, b.mapErr("delete expired", err)
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
	applies := make([]step, len(page))
	for i, c := range page {
		e := ending(c.g, backend.Ending{At: q.Now, Keep: q.History}) // reasons are the script's
		args := append([]string{c.g.recPrefix(), userFlag(c.g), now, cutText, b.channel(), b.tag, e[3], e[4], score(q.Now), anonID(c.g)}, c.chosen...)
		applies[i] = b.call(sExpireApply, []string{c.g.idx(), c.g.hist(), b.locOfAnon(c.g)}, args...)
	}
	var removed []backend.Record
	var after []step
	stay := int64(0)
	for i, r := range b.pipe(ctx, applies...) {
		arr, err := r.ToArray()
		if err != nil || len(arr) == 0 {
			return removed, 0, false, b.mapErr("delete expired", errOr(err, errEntry))
		}
		g := page[i].g
		earliest, _ := arr[0].ToString()
		if earliest != "" && parseScore(earliest) <= parseScore(maxScore) {
			stay++
		}
		var gone []backend.ID
		for j := 1; j+1 < len(arr); j += 2 {
			if s, _ := arr[j+1].ToString(); s == "g" {
				text, _ := arr[j].ToString()
				if id, ok := backend.ParseID(text); ok {
					gone = append(gone, id)
				}
				continue
			}
			recs, _ := b.records(g, arr[j:j+2])
			removed = append(removed, recs...)
			gone = append(gone, recs[0].ID)
		}
		after = append(after, b.call(sDueSet, []string{b.dueKey()}, g.tag, page[i].score, earliest))
		after = append(after, b.forgetSteps(g, gone)...)
	}
	if err := firstErr(b.pipe(context.WithoutCancel(ctx), after...)); err != nil {
		b.log.Warn("redisstore: cleanup could not update its index (the next cleanup looks again)", "prefix", b.prefix, "err", err)
	}
	return removed, stay, more, nil
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
