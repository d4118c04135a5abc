package pgstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
	"github.com/usersessions/usersessions/internal/backendkit"
	"github.com/usersessions/usersessions/internal/groupcommit"
)

// Defaults for zero Options fields.
const (
	DefaultTable        = "usersessions"
	DefaultPingInterval = time.Second
)

// schemaVersion is the version of the tables Open creates; Open refuses
// (usersessions.ErrSchema) a database whose stored version is newer.
const schemaVersion = 1

// Options configure a Backend. A nil *Options means all defaults.
type Options struct {
	// Table is the name of the sessions table, default "usersessions": a
	// lowercase SQL identifier of at most 40 characters (letters, digits,
	// underscores; not starting with a digit). Open creates and migrates
	// it, its indexes, the table Table+"_settings", and uses the
	// notification channel Table+"_changes".
	Table string
	// PingInterval is how often the change feed's connection is checked
	// while no notice arrives; a ping that fails or does not answer
	// within about one interval reports the feed lost. Default 1 s.
	PingInterval time.Duration
}

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// Backend is a usersessions.Backend and backend.SharedBackend over a
// PostgreSQL table. Its methods are safe for concurrent use. The Store that
// owns it closes it.
type Backend struct {
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig // for the change feed's own connection
	table   string          // quoted identifier
	name    string          // unquoted table name
	channel string
	tag     string // this Backend's instance tag in notices
	ping    time.Duration
	log     *slog.Logger

	idle   atomic.Int64 // idle timeout in force, ns (set by Open)
	closed atomic.Bool

	retries atomic.Int64 // transactions run again after a deadlock or serialization failure

	// The change feed.
	ctx        context.Context // cancelled by Close
	cancel     context.CancelFunc
	subscribed atomic.Bool
	listenDone chan struct{} // closed when the listener goroutine ends
	listenConn atomic.Pointer[pgx.Conn]
	closeOnce  sync.Once

	// Group commit of Create (batch.go).
	creates     *groupcommit.Group[*backend.Record]
	createsOnce sync.Once
}

var (
	_ usersessions.Backend  = (*Backend)(nil)
	_ backend.SharedBackend = (*Backend)(nil)
)

// Open connects to the database dsn (a PostgreSQL URL or key=value string,
// as pgxpool.ParseConfig takes; pool_max_conns and friends apply) and
// returns a Backend. It does not touch the schema: the Store's call of
// Backend.Open does. The connection is checked with one ping.
func Open(ctx context.Context, dsn string, opts *Options) (*Backend, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if !tableName.MatchString(o.Table) {
		return nil, fmt.Errorf("pgstore: table name %q: want a lowercase identifier of at most 40 characters", o.Table)
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	var tag [8]byte
	_, _ = rand.Read(tag[:])
	b := &Backend{
		connCfg:    cfg.ConnConfig.Copy(),
		table:      pgx.Identifier{o.Table}.Sanitize(),
		name:       o.Table,
		channel:    o.Table + "_changes",
		tag:        hex.EncodeToString(tag[:]),
		ping:       o.PingInterval,
		log:        slog.Default(),
		listenDone: make(chan struct{}),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.cancel()
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if err := b.pool.Ping(ctx); err != nil {
		b.cancel()
		b.closePool(5 * time.Second)
		return nil, b.mapErr("open", err)
	}
	return b, nil
}

// String describes the Backend for logs and Store.Path: "postgres table
// usersessions". It never shows the connection string (it may hold a
// password).
func (b *Backend) String() string { return "postgres table " + b.name }

// Table returns the name of the sessions table.
func (b *Backend) Table() string { return b.name }

// ListenerName is the application_name of the change feed's connection
// (visible in pg_stat_activity): "usersessions listener " and this
// Backend's instance tag.
func (b *Backend) ListenerName() string { return "usersessions listener " + b.tag }

// Open creates or checks the schema and sets the idle timeout in force:
// idle, or for a negative idle the one stored by the last Open (0 if none).
// A changed idle timeout recomputes every deadline in one UPDATE and is
// stored. It runs under an advisory lock, so instances starting at once
// do not race.
func (b *Backend) Open(ctx context.Context, idle time.Duration, log *slog.Logger) (time.Duration, error) {
	if b.closed.Load() {
		return 0, usersessions.ErrClosed
	}
	if log != nil {
		b.log = log
	}
	var inForce time.Duration
	err := b.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "usersessions schema "+b.name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, b.sql(schemaSQL)); err != nil {
			return err
		}
		var version int64
		err := tx.QueryRow(ctx, b.sql(`SELECT value FROM {settings} WHERE name = 'schema_version'`)).Scan(&version)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, b.sql(`INSERT INTO {settings} (name, value) VALUES ('schema_version', $1)`), schemaVersion); err != nil {
				return err
			}
		case err != nil:
			return err
		case version > schemaVersion:
			return fmt.Errorf("pgstore: table %s has schema version %d, this build knows %d: %w", b.name, version, schemaVersion, usersessions.ErrSchema)
		}
		var stored int64
		err = tx.QueryRow(ctx, b.sql(`SELECT value FROM {settings} WHERE name = 'idle_timeout'`)).Scan(&stored)
		if errors.Is(err, pgx.ErrNoRows) {
			stored, err = -1, nil
		}
		if err != nil {
			return err
		}
		if idle < 0 {
			inForce = time.Duration(max(stored, 0))
		} else {
			inForce = idle
		}
		if int64(inForce) != stored {
			tag, err := tx.Exec(ctx, b.sql(`UPDATE {t} SET deadline = `+deadlineSQL("last_seen", "$1")+` WHERE deadline IS DISTINCT FROM `+deadlineSQL("last_seen", "$1")), int64(inForce))
			if err != nil {
				return err
			}
			if stored >= 0 {
				b.log.Info("pgstore: idle timeout changed: deadlines recomputed", "table", b.name, "from", time.Duration(stored), "to", inForce, "rows", tag.RowsAffected())
			}
			if _, err := tx.Exec(ctx, b.sql(`INSERT INTO {settings} (name, value) VALUES ('idle_timeout', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value`), int64(inForce)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, b.mapErr("open schema", err)
	}
	b.idle.Store(int64(inForce))
	return inForce, nil
}

const schemaSQL = `
CREATE TABLE IF NOT EXISTS {t} (
	id         bytea  PRIMARY KEY,
	hash       bytea  NOT NULL,
	user_id    text   NOT NULL DEFAULT '',
	ip         inet,
	user_agent text   NOT NULL DEFAULT '',
	created    bigint NOT NULL,
	last_seen  bigint NOT NULL,
	expires    bigint NOT NULL,
	deadline   bigint NOT NULL,
	identity   bigint NOT NULL DEFAULT 0,
	vals       bytea
);
CREATE INDEX IF NOT EXISTS {idx_user} ON {t} (user_id, id);
CREATE INDEX IF NOT EXISTS {idx_deadline} ON {t} (deadline, id);
CREATE INDEX IF NOT EXISTS {idx_ip} ON {t} USING gist (ip inet_ops);
CREATE TABLE IF NOT EXISTS {settings} (
	name  text   PRIMARY KEY,
	value bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {hist} (
	user_id    text   NOT NULL,
	ended_at   bigint NOT NULL,
	id         bytea  NOT NULL,
	keep_until bigint NOT NULL,
	reason     text   NOT NULL,
	ended_by   text   NOT NULL DEFAULT '',
	hash       bytea  NOT NULL,
	ip         inet,
	user_agent text   NOT NULL DEFAULT '',
	created    bigint NOT NULL,
	last_seen  bigint NOT NULL,
	expires    bigint NOT NULL,
	identity   bigint NOT NULL DEFAULT 0,
	vals       bytea,
	PRIMARY KEY (user_id, ended_at, id)
);
CREATE INDEX IF NOT EXISTS {idx_hist_until} ON {hist} (keep_until);`

// sql fills the table and index names into q.
func (b *Backend) sql(q string) string {
	return strings.NewReplacer(
		"{t}", b.table,
		"{settings}", pgx.Identifier{b.name + "_settings"}.Sanitize(),
		"{idx_user}", pgx.Identifier{b.name + "_user_idx"}.Sanitize(),
		"{idx_deadline}", pgx.Identifier{b.name + "_deadline_idx"}.Sanitize(),
		"{idx_ip}", pgx.Identifier{b.name + "_ip_idx"}.Sanitize(),
		"{hist}", pgx.Identifier{b.name + "_history"}.Sanitize(),
		"{idx_hist_until}", pgx.Identifier{b.name + "_history_until_idx"}.Sanitize(),
	).Replace(q)
}

// deadlineSQL is Record.Deadline in SQL: expires, or lastSeen plus idle
// (a bigint parameter, ns) when that is sooner, saturated like addNanos.
func deadlineSQL(lastSeen, idle string) string {
	return fmt.Sprintf(`(CASE WHEN %[2]s::bigint > 0 AND %[1]s <= 9223372036854775807 - %[2]s::bigint THEN least(expires, %[1]s + %[2]s::bigint) ELSE expires END)`, lastSeen, idle)
}

// idleNow is the idle timeout in force.
func (b *Backend) idleNow() time.Duration { return time.Duration(b.idle.Load()) }

// inTx runs fn in a transaction and commits it, running it again (up to
// 5 times) after a deadlock or serialization failure.
func (b *Backend) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = pgx.BeginFunc(ctx, b.pool, fn)
		if !isRetryable(err) {
			return err
		}
		b.retries.Add(1)
	}
	return err
}

// columns are the record's columns in the order scanRecord reads them.
const columns = `id, hash, user_id, ip, user_agent, created, last_seen, expires, identity`

// scanRecord reads a row of columns (and vals when values) into r. A
// record that cannot be read gives an error wrapping ErrCorrupt, with
// r.ID set when the ID can be.
func scanRecord(row pgx.Row, r *backend.Record, values bool) error {
	var (
		id, hash []byte
		ip       *netip.Prefix
		identity int64
		vals     []byte
	)
	*r = backend.Record{}
	dest := []any{&id, &hash, &r.UserID, &ip, &r.UserAgent, &r.Created, &r.LastSeen, &r.Expires, &identity}
	if values {
		dest = append(dest, &vals)
	}
	if err := row.Scan(dest...); err != nil {
		return err
	}
	copy(r.ID[:], id)
	if len(id) != len(r.ID) {
		return fmt.Errorf("pgstore: record %x: id of %d bytes: %w", id, len(id), usersessions.ErrCorrupt)
	}
	if len(hash) != len(r.Hash) {
		return fmt.Errorf("pgstore: record %s: hash of %d bytes: %w", r.ID, len(hash), usersessions.ErrCorrupt)
	}
	copy(r.Hash[:], hash)
	if ip != nil {
		r.IP = ip.Addr()
	}
	r.Identity = uint64(identity)
	if values {
		r.Values = vals
	}
	return nil
}

// storable returns r, or a copy of it with its text made valid UTF-8
// without NUL (usersessions.SanitizeText), which PostgreSQL's text columns
// refuse (SQLSTATE 22021). The Store sends valid text; a caller that goes
// around it must not fail a batch of others' rows.
func storable(r *backend.Record) *backend.Record {
	user, ua := usersessions.SanitizeText(r.UserID), usersessions.SanitizeText(r.UserAgent)
	if user == r.UserID && ua == r.UserAgent {
		return r
	}
	c := *r
	c.UserID, c.UserAgent = user, ua
	return &c
}

// ipArg is the inet parameter for addr: NULL for the zero Addr.
func ipArg(addr netip.Addr) any {
	if !addr.IsValid() {
		return nil
	}
	return addr.WithZone("")
}

// Get reads the record of id into r, or returns ErrNotFound.
func (b *Backend) Get(ctx context.Context, id backend.ID, r *backend.Record, values bool) error {
	if b.closed.Load() {
		return usersessions.ErrClosed
	}
	q := `SELECT ` + columns + ` FROM {t} WHERE id = $1`
	if values {
		q = `SELECT ` + columns + `, vals FROM {t} WHERE id = $1`
	}
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		err = scanRecord(b.pool.QueryRow(ctx, b.sql(q), id[:]), r, values)
		if !isConnError(err) || ctx.Err() != nil {
			break
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return usersessions.ErrNotFound
	}
	return b.mapErr("get", err)
}

// Create stores the new record r; it fails if r.ID exists. It sends no
// change notice, unless a limit removes other records.
func (b *Backend) Create(ctx context.Context, r *backend.Record, limit *backend.UserLimit) ([]backend.Record, error) {
	if b.closed.Load() {
		return nil, usersessions.ErrClosed
	}
	r = storable(r)
	if limit == nil || limit.Max <= 0 || r.UserID == "" {
		return nil, b.createBatched(ctx, r) // batch.go
	}
	var evicted []backend.Record
	err := b.inTx(ctx, func(tx pgx.Tx) error {
		if err := b.lockUser(ctx, tx, r.UserID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, b.sql(insertSQL), r.ID[:], r.Hash[:], r.UserID, ipArg(r.IP), r.UserAgent,
			r.Created, r.LastSeen, r.Expires, r.Deadline(b.idleNow()), int64(r.Identity), r.Values); err != nil {
			return err
		}
		var err error
		evicted, err = b.applyLimit(ctx, tx, r, limit)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return nil, fmt.Errorf("pgstore: create %s: the ID exists", r.ID)
	}
	return evicted, b.mapErr("create", err)
}

// Update reads the record of id with FOR UPDATE, calls change, and writes
// the result with its deadline recomputed, in one transaction that also
// sends the change notice. It returns ErrNotFound when there is no record.
func (b *Backend) Update(ctx context.Context, id backend.ID, change func(r *backend.Record) error, limit *backend.UserLimit) ([]backend.Record, error) {
	if b.closed.Load() {
		return nil, usersessions.ErrClosed
	}
	var changeErr error
	var evicted []backend.Record
	err := b.inTx(ctx, func(tx pgx.Tx) error {
		evicted = nil
		var r backend.Record
		err := scanRecord(tx.QueryRow(ctx, b.sql(`SELECT `+columns+`, vals FROM {t} WHERE id = $1 FOR UPDATE`), id[:]), &r, true)
		if errors.Is(err, pgx.ErrNoRows) {
			return usersessions.ErrNotFound
		}
		if err != nil {
			return err
		}
		oldUser := r.UserID
		if changeErr = change(&r); changeErr != nil {
			return changeErr
		}
		r = *storable(&r)
		if limit != nil && limit.Max > 0 && r.UserID != "" && r.UserID != oldUser {
			if err := b.lockUser(ctx, tx, r.UserID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, b.sql(`UPDATE {t} SET hash = $2, user_id = $3, ip = $4, user_agent = $5, created = $6,
			last_seen = $7, expires = $8, deadline = $9, identity = $10, vals = $11 WHERE id = $1`),
			id[:], r.Hash[:], r.UserID, ipArg(r.IP), r.UserAgent, r.Created, r.LastSeen, r.Expires,
			r.Deadline(b.idleNow()), int64(r.Identity), r.Values); err != nil {
			return err
		}
		if limit != nil && limit.Max > 0 && r.UserID != "" && r.UserID != oldUser {
			r.ID = id
			var err error
			if evicted, err = b.applyLimit(ctx, tx, &r, limit); err != nil {
				return err
			}
		}
		return b.notify(ctx, tx, []backend.ID{id})
	})
	if changeErr != nil && errors.Is(err, changeErr) {
		return nil, changeErr // the Store's own error, as it made it
	}
	return evicted, b.mapErr("update", err)
}

// Touch writes activity in one statement: LastSeen moves only forward, the
// client is the one of the newest activity, the deadline follows. Missing
// records are skipped. It sends no change notice.
func (b *Backend) Touch(ctx context.Context, acts []backend.Activity) error {
	if b.closed.Load() {
		return usersessions.ErrClosed
	}
	if len(acts) == 0 {
		return nil
	}
	// One row per ID (the newest activity), in ID order: two instances
	// touching the same sessions lock them in the same order.
	sorted := slices.Clone(acts)
	slices.SortFunc(sorted, func(x, y backend.Activity) int {
		if c := strings.Compare(string(x.ID[:]), string(y.ID[:])); c != 0 {
			return c
		}
		return -cmp.Compare(x.LastSeen, y.LastSeen) // newest first
	})
	sorted = slices.CompactFunc(sorted, func(x, y backend.Activity) bool { return x.ID == y.ID })
	ids := make([][]byte, len(sorted))
	seen := make([]int64, len(sorted))
	ips := make([]*netip.Prefix, len(sorted))
	uas := make([]string, len(sorted))
	for i := range sorted {
		a := &sorted[i]
		ids[i], seen[i], uas[i] = a.ID[:], a.LastSeen, usersessions.SanitizeText(a.UserAgent)
		if a.IP.IsValid() {
			addr := a.IP.WithZone("")
			p := netip.PrefixFrom(addr, addr.BitLen())
			ips[i] = &p
		}
	}
	newSeen := `greatest(t.last_seen, a.ls)`
	// The rows are locked first, in ID order (a materialized CTE with
	// ORDER BY ... FOR UPDATE): the UPDATE's join would lock them in hash
	// order, and two instances touching the same sessions would deadlock.
	q := `WITH l AS MATERIALIZED (SELECT id FROM {t} WHERE id = ANY($1::bytea[]) ORDER BY id FOR UPDATE)
		UPDATE {t} AS t SET last_seen = ` + newSeen + `,
		ip = CASE WHEN a.ls >= t.last_seen THEN a.ip ELSE t.ip END,
		user_agent = CASE WHEN a.ls >= t.last_seen THEN a.ua ELSE t.user_agent END,
		deadline = ` + strings.ReplaceAll(deadlineSQL(newSeen, "$5"), "expires", "t.expires") + `
		FROM unnest($1::bytea[], $2::bigint[], $3::inet[], $4::text[]) AS a(id, ls, ip, ua), l
		WHERE t.id = a.id AND t.id = l.id`
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		_, err = b.pool.Exec(ctx, b.sql(q), ids, seen, ips, uas, int64(b.idleNow()))
		if !isRetryable(err) {
			break
		}
		b.retries.Add(1)
	}
	return b.mapErr("touch", err)
}

// Delete removes the record of id (only if its user_id is *owner when owner
// is not nil), keeps it in the history as end says, sends the change
// notice, and returns it; or returns ErrNotFound. The owner is read from
// the user_id column, so an unreadable record is removed too (returned
// with only its ID).
func (b *Backend) Delete(ctx context.Context, id backend.ID, owner *string, end backend.Ending) (backend.Record, error) {
	if b.closed.Load() {
		return backend.Record{}, usersessions.ErrClosed
	}
	var removed []backend.Record
	err := b.inTx(ctx, func(tx pgx.Tx) error {
		var rows pgx.Rows
		var err error
		if owner == nil {
			rows, err = tx.Query(ctx, b.sql(`DELETE FROM {t} WHERE id = $1 RETURNING `+columns+`, vals`), id[:])
		} else {
			rows, err = tx.Query(ctx, b.sql(`DELETE FROM {t} WHERE id = $1 AND user_id = $2 RETURNING `+columns+`, vals`), id[:], usersessions.SanitizeText(*owner))
		}
		if err != nil {
			return err
		}
		if removed, err = collectRecords(rows, removed[:0]); err != nil {
			return err
		}
		if len(removed) == 0 {
			return usersessions.ErrNotFound
		}
		if err := b.keepEnded(ctx, tx, removed, func(*backend.Record) backend.Ending { return end }); err != nil {
			return err
		}
		return b.notify(ctx, tx, []backend.ID{id})
	})
	if err != nil {
		return backend.Record{ID: id}, b.mapErr("delete", err)
	}
	r := removed[0]
	r.ID = id
	return r, nil
}

// DeleteByUser removes every record of userID but keep, keeps them in the
// history as end says, sends the change notices, and returns them.
func (b *Backend) DeleteByUser(ctx context.Context, userID string, keep backend.ID, end backend.Ending) ([]backend.Record, error) {
	if b.closed.Load() {
		return nil, usersessions.ErrClosed
	}
	var removed []backend.Record
	err := b.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, b.sql(`DELETE FROM {t} WHERE user_id = $1 AND id <> $2 RETURNING `+columns+`, vals`), usersessions.SanitizeText(userID), keep[:])
		if err != nil {
			return err
		}
		if removed, err = collectRecords(rows, removed[:0]); err != nil {
			return err
		}
		if err := b.keepEnded(ctx, tx, removed, func(*backend.Record) backend.Ending { return end }); err != nil {
			return err
		}
		return b.notify(ctx, tx, idsOf(removed))
	})
	if err != nil {
		return nil, b.mapErr("delete by user", err)
	}
	return removed, nil
}

// collectIDs appends the IDs of rows (one bytea column) to ids. IDs of the
// wrong length are kept, cut or padded: the change notice carries them so
// that no cache keeps what was removed.
func collectIDs(rows pgx.Rows, ids []backend.ID) ([]backend.ID, error) {
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return ids, err
		}
		var id backend.ID
		copy(id[:], raw)
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// DefaultExpiredLimit is DeleteExpired's batch when ExpiredQuery.Limit is 0.
const DefaultExpiredLimit = backendkit.DefaultExpiredLimit

// DeleteExpired removes up to q.Limit records due under q (deadline <=
// q.Now; an idle deadline only when also q.IdleGrace past) that q.Keep does
// not veto, sending the change notices. Candidates are locked with FOR
// UPDATE SKIP LOCKED, so every instance may run it at once: each removes
// different records, and none waits for another.
func (b *Backend) DeleteExpired(ctx context.Context, q backend.ExpiredQuery) ([]backend.Record, bool, error) {
	if b.closed.Load() {
		return nil, false, usersessions.ErrClosed
	}
	limit, graceCut := backendkit.Expiry(q)
	var (
		removed []backend.Record
		more    bool
	)
	err := b.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, b.sql(`DELETE FROM {hist} WHERE keep_until <= $1`), q.Now); err != nil {
			return err
		}
		var err error
		if removed, more, err = b.deleteExpiredPages(ctx, tx, q, limit, graceCut); err != nil {
			return err
		}
		err = b.keepEnded(ctx, tx, removed, func(r *backend.Record) backend.Ending {
			return backend.Ending{At: q.Now, Reason: backend.ExpiryReason(r, q.Now), Keep: q.History}
		})
		if err != nil {
			return err
		}
		return b.notify(ctx, tx, idsOf(removed))
	})
	if err != nil {
		return nil, false, b.mapErr("delete expired", err)
	}
	return removed, more, nil
}

// expiryCursor is where the scan of expired candidates goes on from: the
// (deadline, id) of the last row read.
type expiryCursor struct {
	deadline int64
	id       []byte
}

// deleteExpiredPages deletes, in tx, up to limit due sessions that q.Keep
// does not veto, reading candidates in pages in (deadline, id) order.
// Vetoed ones are skipped, not counted, so a run of kept sessions at the
// front never stalls cleanup. more reports that it stopped at limit.
func (b *Backend) deleteExpiredPages(ctx context.Context, tx pgx.Tx, q backend.ExpiredQuery, limit int, graceCut int64) ([]backend.Record, bool, error) {
	var removed []backend.Record
	more := false
	// id is not nil: NULL would make the row comparison unknown.
	cur := expiryCursor{deadline: math.MinInt64, id: []byte{}}
	page := min(limit, 500)
	for len(removed) < limit {
		batch, n, over, err := b.expiredCandidates(ctx, tx, q, graceCut, &cur, page, limit-len(removed))
		if err != nil {
			return nil, false, err
		}
		more = more || over
		if len(batch) > 0 {
			drows, err := tx.Query(ctx, b.sql(`DELETE FROM {t} WHERE id = ANY($1) RETURNING `+columns+`, vals`), batch)
			if err != nil {
				return nil, false, err
			}
			if removed, err = collectRecords(drows, removed); err != nil {
				return nil, false, err
			}
		}
		if n < page {
			break // no more candidates
		}
		if len(removed) >= limit {
			more = true
		}
	}
	return removed, more, nil
}

// expiredCandidates reads one page of due sessions after cur, locked,
// and advances cur. It returns the IDs to delete (at most room, vetoed
// ones left out), how many rows it read, and over = true when due ones
// were left for lack of room.
func (b *Backend) expiredCandidates(ctx context.Context, tx pgx.Tx, q backend.ExpiredQuery, graceCut int64, cur *expiryCursor, page, room int) (batch [][]byte, n int, over bool, err error) {
	rows, err := tx.Query(ctx, b.sql(`SELECT id, deadline FROM {t}
		WHERE deadline <= $1 AND (deadline >= expires OR deadline <= $2)
		AND (deadline, id) > ($3, $4::bytea)
		ORDER BY deadline, id LIMIT $5 FOR UPDATE SKIP LOCKED`),
		q.Now, graceCut, cur.deadline, cur.id, page)
	if err != nil {
		return nil, 0, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw, &cur.deadline); err != nil {
			return nil, 0, false, err
		}
		n++
		cur.id = raw
		var id backend.ID
		copy(id[:], raw)
		if len(raw) == len(id) && q.Keep != nil && q.Keep(id) {
			continue
		}
		if len(batch) < room {
			batch = append(batch, raw)
		} else {
			over = true
		}
	}
	rows.Close()
	return batch, n, over, rows.Err()
}

// ListByUser calls fn for each record of userID, in ID order, or with an
// error wrapping ErrCorrupt for each one that cannot be read. The records
// are read first, so fn may call the Backend.
func (b *Backend) ListByUser(ctx context.Context, userID string, fn func(r *backend.Record, err error)) error {
	if b.closed.Load() {
		return usersessions.ErrClosed
	}
	recs, errs, err := b.query(ctx, `SELECT `+columns+`, vals FROM {t} WHERE user_id = $1 ORDER BY id`, usersessions.SanitizeText(userID))
	if err != nil {
		return b.mapErr("list by user", err)
	}
	for i := range recs {
		fn(&recs[i], errs[i])
	}
	return nil
}

// query runs q (selecting columns and vals) and returns the records and,
// for each, its read error. It reads every row before returning, and
// retries once after a broken connection.
func (b *Backend) query(ctx context.Context, q string, args ...any) ([]backend.Record, []error, error) {
	var (
		recs []backend.Record
		errs []error
		err  error
	)
	for attempt := 0; attempt < 2; attempt++ {
		recs, errs = recs[:0], errs[:0]
		var rows pgx.Rows
		rows, err = b.pool.Query(ctx, b.sql(q), args...)
		if err == nil {
			for rows.Next() {
				var r backend.Record
				rerr := scanRecord(rows, &r, true)
				if rerr != nil && !errors.Is(rerr, usersessions.ErrCorrupt) {
					err = rerr
					break
				}
				recs, errs = append(recs, r), append(errs, rerr)
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		if !isConnError(err) || ctx.Err() != nil {
			break
		}
	}
	return recs, errs, err
}

// Scan calls fn for up to limit records with IDs after after, in ID order,
// narrowed by f.UserID, f.Anonymous and f.IPPrefix (through the indexes),
// and returns the last ID visited and done = true when no record is left.
// Rows whose ID is not 16 bytes are invisible to Scan (Check reports them).
func (b *Backend) Scan(ctx context.Context, f backend.ScanFilter, after backend.ID, limit int, fn func(r *backend.Record, err error)) (backend.ID, bool, error) {
	if b.closed.Load() {
		return after, false, usersessions.ErrClosed
	}
	if limit <= 0 {
		limit = 100
	}
	where := []string{`id > $1`, `length(id) = 16`}
	args := []any{after[:]}
	if f.UserID != "" {
		args = append(args, usersessions.SanitizeText(f.UserID))
		where = append(where, fmt.Sprintf(`user_id = $%d`, len(args)))
	}
	if f.Anonymous {
		where = append(where, `user_id = ''`)
	}
	if f.IPPrefix.IsValid() {
		args = append(args, f.IPPrefix.Masked())
		where = append(where, fmt.Sprintf(`ip <<= $%d`, len(args)))
	}
	args = append(args, limit)
	q := `SELECT ` + columns + `, vals FROM {t} WHERE ` + strings.Join(where, " AND ") + fmt.Sprintf(` ORDER BY id LIMIT $%d`, len(args))
	recs, errs, err := b.query(ctx, q, args...)
	if err != nil {
		return after, false, b.mapErr("scan", err)
	}
	last := after
	for i := range recs {
		last = recs[i].ID
		fn(&recs[i], errs[i])
	}
	return last, len(recs) < limit, nil
}

// Count returns the number of rows, expired ones included.
func (b *Backend) Count(ctx context.Context) (int, error) {
	if b.closed.Load() {
		return 0, usersessions.ErrClosed
	}
	var n int64
	err := b.pool.QueryRow(ctx, b.sql(`SELECT count(*) FROM {t}`)).Scan(&n)
	if isConnError(err) && ctx.Err() == nil {
		err = b.pool.QueryRow(ctx, b.sql(`SELECT count(*) FROM {t}`)).Scan(&n)
	}
	return int(n), b.mapErr("count", err)
}

// maxProblems bounds the problems Check reports of each kind.
const maxProblems = 100

// Check verifies the table's invariants: every ID is 16 bytes and every
// hash 32, every deadline agrees with expires, last_seen and the stored
// idle timeout, and the stored idle timeout is the one in force here. Each
// problem wraps ErrCorrupt.
func (b *Backend) Check(ctx context.Context) error {
	if b.closed.Load() {
		return usersessions.ErrClosed
	}
	var problems []error
	var stored int64
	err := b.pool.QueryRow(ctx, b.sql(`SELECT value FROM {settings} WHERE name = 'idle_timeout'`)).Scan(&stored)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		problems = append(problems, fmt.Errorf("pgstore: table %s: no stored idle timeout (never opened?): %w", b.name, usersessions.ErrCorrupt))
		stored = b.idle.Load()
	case err != nil:
		return b.mapErr("check", err)
	case stored != b.idle.Load():
		problems = append(problems, fmt.Errorf("pgstore: table %s: stored idle timeout %v, this instance uses %v (instances disagree): %w",
			b.name, time.Duration(stored), b.idleNow(), usersessions.ErrCorrupt))
	}
	checks := []struct{ what, cond string }{
		{"id is not 16 bytes", `length(id) <> 16`},
		{"hash is not 32 bytes", `length(hash) <> 32`},
		{"deadline disagrees with expires, last_seen and the idle timeout", `deadline <> ` + deadlineSQL("last_seen", "$1")},
	}
	for _, c := range checks {
		var args []any
		if strings.Contains(c.cond, "$1") {
			args = append(args, stored)
		}
		rows, err := b.pool.Query(ctx, b.sql(`SELECT id FROM {t} WHERE `+c.cond+` ORDER BY id LIMIT `+fmt.Sprint(maxProblems+1)), args...)
		if err != nil {
			return b.mapErr("check", err)
		}
		n := 0
		for rows.Next() {
			var id []byte
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return b.mapErr("check", err)
			}
			if n++; n > maxProblems {
				problems = append(problems, fmt.Errorf("pgstore: more records where %s: %w", c.what, usersessions.ErrCorrupt))
				break
			}
			problems = append(problems, fmt.Errorf("pgstore: record %x: %s: %w", id, c.what, usersessions.ErrCorrupt))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return b.mapErr("check", err)
		}
	}
	return errors.Join(problems...)
}

// Close stops the change feed and closes the connections. It waits for
// neither longer than a few seconds: a query stuck on a hung server does
// not hang Close.
func (b *Backend) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		b.cancel()
		if b.subscribed.Load() {
			select {
			case <-b.listenDone:
			case <-time.After(3 * time.Second):
				err = errors.New("pgstore: close: the change feed did not stop within 3s")
			}
		}
		if !b.closePool(3 * time.Second) {
			err = errors.Join(err, errors.New("pgstore: close: connections still in use after 3s"))
		}
	})
	return err
}

// closePool closes the pool, waiting at most d for connections in use.
func (b *Backend) closePool(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		b.pool.Close()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
