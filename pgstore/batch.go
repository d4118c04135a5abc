package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/groupcommit"
)

// Group commit of Create (package groupcommit).
//
// Every durable commit waits for a WAL flush. Creates that arrive while one
// is being written queue up and go out together: one INSERT of many rows,
// one commit, one flush. A lone Create waits for nothing (the committer
// takes what is queued, it never waits for more), and throughput grows with
// the number of callers, as on the bbolt backend. Creates with a
// MaxPerUser limit take their own transaction (they lock their user).

// createCommitters run batches at once: while one waits for its flush,
// another fills the next.
const (
	createCommitters = 2
	maxCreateBatch   = 256
)

// createBatched queues r for a committer and waits until it is durable.
func (b *Backend) createBatched(ctx context.Context, r *backend.Record) error {
	b.createsOnce.Do(func() {
		// One bad row fails alone; a lost connection fails the batch.
		b.creates = groupcommit.New(b.ctx.Done(), maxCreateBatch, b.commitCreates, func(err error) bool { return !isConnError(err) })
		b.creates.Start(createCommitters)
	})
	err := b.creates.Do(ctx, r)
	if cerr := ctx.Err(); cerr != nil && err == cerr { // not taken: ctx ended first
		return b.mapErr("create", err)
	}
	return err
}

// commitCreates inserts a batch in one statement, within its own deadline.
func (b *Backend) commitCreates(batch []*backend.Record) error {
	ctx, cancel := context.WithTimeout(b.ctx, createTimeout)
	defer cancel()
	if len(batch) == 1 {
		return b.insertOne(ctx, batch[0])
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ { // see isRetryable
		if err = b.insertMany(ctx, batch); !isRetryable(err) {
			break
		}
	}
	return err
}

// createTimeout bounds one batch, so a hung server fails Creates with
// ErrUnavailable instead of hanging them.
const createTimeout = 10e9 // 10 s

const insertSQL = `INSERT INTO {t} (id, hash, user_id, ip, user_agent, created, last_seen, expires, deadline, identity, vals)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

func (b *Backend) insertOne(ctx context.Context, r *backend.Record) error {
	r = storable(r)
	var err error
	for attempt := 0; attempt < 5; attempt++ { // see isRetryable
		_, err = b.pool.Exec(ctx, b.sql(insertSQL), r.ID[:], r.Hash[:], r.UserID, ipArg(r.IP), r.UserAgent,
			r.Created, r.LastSeen, r.Expires, r.Deadline(b.idleNow()), int64(r.Identity), r.Values)
		if !isRetryable(err) {
			break
		}
	}
	return b.createErr(r, err)
}

func (b *Backend) insertMany(ctx context.Context, batch []*backend.Record) error {
	n := len(batch)
	ids, hashes, vals := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	users, uas := make([]string, n), make([]string, n)
	ips := make([]*netip.Prefix, n)
	created, seen, expires, deadline, identity := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	idle := b.idleNow()
	for i, r := range batch {
		r = storable(r)
		ids[i], hashes[i], vals[i] = r.ID[:], r.Hash[:], r.Values
		users[i], uas[i] = r.UserID, r.UserAgent
		if r.IP.IsValid() {
			addr := r.IP.WithZone("")
			p := netip.PrefixFrom(addr, addr.BitLen())
			ips[i] = &p
		}
		created[i], seen[i], expires[i], deadline[i], identity[i] = r.Created, r.LastSeen, r.Expires, r.Deadline(idle), int64(r.Identity)
	}
	_, err := b.pool.Exec(ctx, b.sql(`INSERT INTO {t} (id, hash, user_id, ip, user_agent, created, last_seen, expires, deadline, identity, vals)
		SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::inet[], $5::text[], $6::bigint[], $7::bigint[],
			$8::bigint[], $9::bigint[], $10::bigint[], $11::bytea[])`),
		ids, hashes, users, ips, uas, created, seen, expires, deadline, identity, vals)
	return b.mapErr("create", err)
}

// createErr maps an insert's error: a duplicate ID says so.
func (b *Backend) createErr(r *backend.Record, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("pgstore: create %s: the ID exists", r.ID)
	}
	return b.mapErr("create", err)
}
