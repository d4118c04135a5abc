package redisstore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// History and the per-user limit (usersessions.Options.History and
// MaxPerUser) live in the user's group, so the script that removes a
// session writes its history entry in the same step.
//
// A history entry is a member of the user's P:hist:{G}, scored by the
// moment it is kept until (so cleanup drops entries past their time with
// one range), and written by the scripts as length:bytes strings
// (netstr): ended at, reason, by, ID, then the record's fields and values
// as HGETALL lists them.

// errEntry is a history entry this version cannot read.
var errEntry = errors.New("redisstore: unreadable history entry")

// splitNetstr splits a netstr-joined string.
func splitNetstr(s string) ([]string, error) {
	var parts []string
	for s != "" {
		n, rest, ok := strings.Cut(s, ":")
		// Only what the scripts write: decimal digits, no sign, no
		// leading zero.
		size, err := strconv.Atoi(n)
		if !ok || err != nil || n[0] < '0' || n[0] > '9' || (n[0] == '0' && len(n) > 1) || size > len(rest) {
			return nil, errEntry
		}
		parts, s = append(parts, rest[:size]), rest[size:]
	}
	return parts, nil
}

// parseEntry reads a history entry of the group g.
func (b *Backend) parseEntry(g group, s string) (backend.EndedRecord, error) {
	var e backend.EndedRecord
	parts, err := splitNetstr(s)
	if err != nil || len(parts) < 4 || len(parts)%2 != 0 {
		return e, errEntry
	}
	at, ok := parseTime(parts[0])
	id, okID := backend.ParseID(parts[3])
	if !ok || !okID {
		return e, errEntry
	}
	if err := b.parseIn(g, id, fromPairs(parts[4:]), &e.Record, true); err != nil {
		return e, err
	}
	e.EndedAt, e.Reason, e.By = at, parts[1], parts[2]
	return e, nil
}

// History returns userID's history entries, most recent first. Entries
// that cannot be read are skipped (Check reports them).
func (b *Backend) History(ctx context.Context, userID string) ([]backend.EndedRecord, error) {
	if b.closed.Load() {
		return nil, usersessions.ErrClosed
	}
	if userID == "" {
		return nil, nil
	}
	g := b.userGroup(userID)
	var members []string
	err := b.retryRead(ctx, func() error {
		var err error
		members, err = b.client.Do(ctx, b.client.B().Zrange().Key(g.hist()).Min("0").Max("-1").Build()).AsStrSlice()
		return err
	})
	if err != nil {
		return nil, b.mapErr("history", err)
	}
	out := make([]backend.EndedRecord, 0, len(members))
	for _, m := range members {
		if e, err := b.parseEntry(g, m); err == nil {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(x, y backend.EndedRecord) int {
		return cmp.Or(cmp.Compare(y.EndedAt, x.EndedAt), bytes.Compare(y.ID[:], x.ID[:]))
	})
	return out, nil
}

// ending is an Ending as the scripts take it: at, reason, by, the history
// entry's score ("" when it keeps none: no history, or an anonymous
// session) and the history key's TTL.
func ending(g group, e backend.Ending) []string {
	keep, histTTL := "", "0"
	if e.Keep > 0 && !g.anonymous() {
		until := e.At + int64(e.Keep)
		if until < e.At { // saturate, as the Store does
			until = 1<<63 - 1
		}
		keep = score(until)
		histTTL = ttl(&backend.Record{LastSeen: e.At, Expires: until})
	}
	return []string{timeText(e.At), string(e.Reason), e.By, keep, histTTL}
}
