package pgstore

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// History and the per-user limit (usersessions.Options.History and
// MaxPerUser): both happen in the transaction of the change that causes
// them, as the Backend interface asks.

// collectRecords appends the removed records of rows (columns and vals)
// to recs. A row that cannot be read still counts, with only its ID (or
// none), so that revocation never depends on a readable row.
func collectRecords(rows pgx.Rows, recs []backend.Record) ([]backend.Record, error) {
	defer rows.Close()
	for rows.Next() {
		var r backend.Record
		if err := scanRecord(rows, &r, true); err != nil && !errors.Is(err, usersessions.ErrCorrupt) {
			return recs, err
		}
		recs = append(recs, r)
	}
	return recs, rows.Err()
}

func idsOf(recs []backend.Record) []backend.ID {
	ids := make([]backend.ID, len(recs))
	for i := range recs {
		ids[i] = recs[i].ID
	}
	return ids
}

// keepEnded writes history entries for the removed records of a user, as
// ending says for each (nothing when it keeps none).
func (b *Backend) keepEnded(ctx context.Context, tx pgx.Tx, recs []backend.Record, ending func(*backend.Record) backend.Ending) error {
	batch := &pgx.Batch{}
	for i := range recs {
		r := &recs[i]
		e := ending(r)
		if e.Keep <= 0 || r.UserID == "" {
			continue
		}
		until := e.At + int64(e.Keep)
		if until < e.At { // saturate, as the Store does
			until = 1<<63 - 1
		}
		batch.Queue(b.sql(`INSERT INTO {hist} (user_id, ended_at, id, keep_until, reason, ended_by, hash, ip, user_agent,
			created, last_seen, expires, identity, vals) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
			ON CONFLICT DO NOTHING`),
			r.UserID, e.At, r.ID[:], until, usersessions.SanitizeText(string(e.Reason)), usersessions.SanitizeText(e.By), r.Hash[:], ipArg(r.IP), r.UserAgent,
			r.Created, r.LastSeen, r.Expires, int64(r.Identity), r.Values)
	}
	if batch.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, batch).Close()
}

// History returns userID's history entries, most recent first.
func (b *Backend) History(ctx context.Context, userID string) ([]backend.EndedRecord, error) {
	if b.closed.Load() {
		return nil, usersessions.ErrClosed
	}
	rows, err := b.pool.Query(ctx, b.sql(`SELECT `+columns+`, vals, ended_at, reason, ended_by FROM {hist}
		WHERE user_id = $1 ORDER BY ended_at DESC, id DESC`), usersessions.SanitizeText(userID))
	if err != nil {
		return nil, b.mapErr("history", err)
	}
	defer rows.Close()
	var out []backend.EndedRecord
	for rows.Next() {
		var e backend.EndedRecord
		var reason string
		var r backend.Record
		if err := scanRecord(historyRow{rows, &e, &reason}, &r, true); err != nil {
			if errors.Is(err, usersessions.ErrCorrupt) {
				continue
			}
			return nil, b.mapErr("history", err)
		}
		e.Record, e.Reason = r, reason
		out = append(out, e)
	}
	return out, b.mapErr("history", rows.Err())
}

// historyRow scans a history row: the record's columns, then the ending.
type historyRow struct {
	rows   pgx.Rows
	e      *backend.EndedRecord
	reason *string
}

func (h historyRow) Scan(dest ...any) error {
	return h.rows.Scan(append(dest, &h.e.EndedAt, h.reason, &h.e.By)...)
}

// lockUser serializes, until the transaction ends, the writes that can
// give userID another session, so a limit's count cannot race. userID is
// the stored one (see storable).
func (b *Backend) lockUser(ctx context.Context, tx pgx.Tx, userID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "usersessions user "+b.name+" "+userID)
	return err
}

// applyLimit removes the least recent of r's user's live sessions beyond
// limit.Max (never r), with history and notices; the caller holds the
// user's lock (lockUser).
func (b *Backend) applyLimit(ctx context.Context, tx pgx.Tx, r *backend.Record, limit *backend.UserLimit) ([]backend.Record, error) {
	rows, err := tx.Query(ctx, b.sql(`SELECT `+columns+`, vals FROM {t} WHERE user_id = $1 AND id <> $2 FOR UPDATE`), r.UserID, r.ID[:])
	if err != nil {
		return nil, err
	}
	others, err := collectRecords(rows, nil)
	if err != nil {
		return nil, err
	}
	live := others[:0]
	for _, o := range others {
		if limit.Live(&o) {
			live = append(live, o)
		}
	}
	excess := len(live) + 1 - limit.Max
	if excess <= 0 {
		return nil, nil
	}
	slices.SortFunc(live, func(x, y backend.Record) int { return cmp.Compare(limit.Recency(&x), limit.Recency(&y)) })
	victims := slices.Clone(live[:excess])
	ids := make([][]byte, len(victims))
	for i := range victims {
		ids[i] = victims[i].ID[:]
	}
	if _, err := tx.Exec(ctx, b.sql(`DELETE FROM {t} WHERE id = ANY($1)`), ids); err != nil {
		return nil, err
	}
	if err := b.keepEnded(ctx, tx, victims, func(*backend.Record) backend.Ending { return limit.Ending }); err != nil {
		return nil, err
	}
	return victims, b.notify(ctx, tx, idsOf(victims))
}
