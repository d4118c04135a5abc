package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usersessions/usersessions"
)

// Group commit of Create.
//
// Every durable commit waits for a WAL flush. Creates that arrive while one
// is being written queue up and go out together: one INSERT of many rows,
// one commit, one flush. A lone Create waits for nothing (the committer
// takes what is queued, it never waits for more), and throughput grows with
// the number of callers, as on the bbolt backend. Creates with a
// MaxPerUser limit take their own transaction (they lock their user).

// createOp is one Create waiting for a committer.
type createOp struct {
	r    *usersessions.Record
	err  error
	done chan struct{}
}

// createCommitters run batches at once: while one waits for its flush,
// another fills the next.
const (
	createCommitters = 2
	maxCreateBatch   = 256
)

// startCommitters starts the committers (once, on first use).
func (b *Backend) startCommitters() {
	b.createsOnce.Do(func() {
		b.creates = make(chan *createOp)
		for range createCommitters {
			go b.createLoop()
		}
	})
}

// createBatched queues r for a committer and waits until it is durable.
func (b *Backend) createBatched(ctx context.Context, r *usersessions.Record) error {
	b.startCommitters()
	op := &createOp{r: r, done: make(chan struct{})}
	select {
	case b.creates <- op:
	case <-b.ctx.Done():
		return usersessions.ErrClosed
	case <-ctx.Done():
		return b.mapErr("create", ctx.Err())
	}
	<-op.done // accepted: the committer decides, within its own deadline
	return op.err
}

func (b *Backend) createLoop() {
	batch := make([]*createOp, 0, maxCreateBatch)
	for {
		select {
		case op := <-b.creates:
			batch = append(batch[:0], op)
		case <-b.ctx.Done():
			return
		}
		// Callers woken by the last commit are about to queue again.
		runtime.Gosched()
	gather:
		for len(batch) < maxCreateBatch {
			select {
			case op := <-b.creates:
				batch = append(batch, op)
			default:
				break gather
			}
		}
		b.runCreates(batch)
	}
}

// runCreates inserts the batch in one statement; if that fails, each
// Create runs alone, so one bad row cannot fail the others.
func (b *Backend) runCreates(batch []*createOp) {
	ctx, cancel := context.WithTimeout(b.ctx, createTimeout)
	defer cancel()
	var err error
	if len(batch) == 1 {
		err = b.insertOne(ctx, batch[0].r)
	} else {
		for attempt := 0; attempt < 5; attempt++ { // see isRetryable
			if err = b.insertMany(ctx, batch); !isRetryable(err) {
				break
			}
		}
		if err != nil && !isConnError(err) {
			for _, op := range batch {
				op.err = b.insertOne(ctx, op.r)
				close(op.done)
			}
			return
		}
	}
	for _, op := range batch {
		op.err = err
		close(op.done)
	}
}

// createTimeout bounds one batch, so a hung server fails Creates with
// ErrUnavailable instead of hanging them.
const createTimeout = 10e9 // 10 s

const insertSQL = `INSERT INTO {t} (id, hash, user_id, ip, user_agent, created, last_seen, expires, deadline, identity, vals)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

func (b *Backend) insertOne(ctx context.Context, r *usersessions.Record) error {
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

func (b *Backend) insertMany(ctx context.Context, batch []*createOp) error {
	n := len(batch)
	ids, hashes, vals := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	users, uas := make([]string, n), make([]string, n)
	ips := make([]*netip.Prefix, n)
	created, seen, expires, deadline, identity := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	idle := b.idleNow()
	for i, op := range batch {
		r := storable(op.r)
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
func (b *Backend) createErr(r *usersessions.Record, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("pgstore: create %s: the ID exists", r.ID)
	}
	return b.mapErr("create", err)
}
