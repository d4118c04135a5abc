package pgstore

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// Notices.
//
// A notice's payload is "v1 TAG ID ID ...": the sending Backend's instance
// tag and the changed IDs in hex, at most idsPerNotice of them, so that a
// payload stays well under PostgreSQL's 8000-byte limit. One transaction's
// IDs go out as few notices as that allows, all delivered at its commit.

const (
	noticeVersion = "v1"
	idsPerNotice  = 200 // 3 + 17 + 200*33 = 6620 bytes
)

// notices splits ids into payloads from the instance tag.
func notices(tag string, ids []backend.ID) []string {
	var out []string
	for len(ids) > 0 {
		n := min(len(ids), idsPerNotice)
		var sb strings.Builder
		sb.Grow(len(noticeVersion) + 1 + len(tag) + n*33)
		sb.WriteString(noticeVersion)
		sb.WriteByte(' ')
		sb.WriteString(tag)
		for _, id := range ids[:n] {
			sb.WriteByte(' ')
			sb.WriteString(hex.EncodeToString(id[:]))
		}
		out = append(out, sb.String())
		ids = ids[n:]
	}
	return out
}

// parseNotice returns a payload's instance tag and IDs; ok is false for a
// payload this version cannot read.
func parseNotice(payload string) (tag string, ids []backend.ID, ok bool) {
	fields := strings.Fields(payload)
	if len(fields) < 2 || fields[0] != noticeVersion {
		return "", nil, false
	}
	ids = make([]backend.ID, 0, len(fields)-2)
	for _, f := range fields[2:] {
		var id backend.ID
		if len(f) != 2*len(id) {
			return "", nil, false
		}
		if _, err := hex.Decode(id[:], []byte(f)); err != nil {
			return "", nil, false
		}
		ids = append(ids, id)
	}
	return fields[1], ids, true
}

// notify sends the change notices of ids within tx: they are delivered if
// and only if tx commits.
func (b *Backend) notify(ctx context.Context, tx pgx.Tx, ids []backend.ID) error {
	for _, p := range notices(b.tag, ids) {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, b.channel, p); err != nil {
			return err
		}
	}
	return nil
}

// Subscribe starts delivering other Backends' change notices on this table
// to feed, on a dedicated connection (application_name ListenerName) that
// LISTENs, until Close. It returns once the first LISTEN is live, or the
// error of the first attempt. Notices this Backend sent are not delivered.
//
// When the connection fails, or a ping (sent after PingInterval without a
// notice) fails or does not answer within half a PingInterval, feed.Lost is called
// at once; the Backend then reconnects, with backoff, and calls
// feed.Restored once LISTEN is live again. Notices sent meanwhile are lost.
func (b *Backend) Subscribe(ctx context.Context, feed backend.ChangeFeed) error {
	if b.closed.Load() {
		return usersessions.ErrClosed
	}
	if !b.subscribed.CompareAndSwap(false, true) {
		return errors.New("pgstore: Subscribe called twice")
	}
	conn, err := b.listen(ctx)
	if err != nil {
		b.subscribed.Store(false)
		return b.mapErr("subscribe", err)
	}
	go b.feedLoop(conn, feed)
	return nil
}

// listen opens the feed's connection and LISTENs.
func (b *Backend) listen(ctx context.Context) (*pgx.Conn, error) {
	cfg := b.connCfg.Copy()
	cfg.RuntimeParams["application_name"] = b.ListenerName()
	ctx, cancel := context.WithTimeout(ctx, max(5*time.Second, 2*b.ping))
	defer cancel()
	stop := context.AfterFunc(b.ctx, cancel) // Close interrupts
	defer stop()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{b.channel}.Sanitize()); err != nil {
		b.closeConn(conn)
		return nil, err
	}
	b.listenConn.Store(conn)
	return conn, nil
}

// closeConn closes a feed connection, waiting at most one second.
func (b *Backend) closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// feedLoop delivers notices until Close, reconnecting after failures.
func (b *Backend) feedLoop(conn *pgx.Conn, feed backend.ChangeFeed) {
	defer close(b.listenDone)
	for {
		err := b.serve(conn, feed)
		b.closeConn(conn)
		b.listenConn.Store(nil)
		if b.ctx.Err() != nil {
			return
		}
		feed.Lost()
		b.log.Warn("pgstore: change feed lost; reconnecting", "table", b.name, "err", err)
		backoff := 20 * time.Millisecond
		for {
			conn, err = b.listen(b.ctx)
			if err == nil {
				break
			}
			if b.ctx.Err() != nil {
				return
			}
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
		feed.Restored()
		b.log.Info("pgstore: change feed restored", "table", b.name)
	}
}

// serve waits for notices on conn and delivers them, pinging after every
// PingInterval without one. It returns the error that ended the
// connection's usefulness, or nil on Close.
func (b *Backend) serve(conn *pgx.Conn, feed backend.ChangeFeed) error {
	for {
		wctx, cancel := context.WithTimeout(b.ctx, b.ping)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if b.ctx.Err() != nil {
			return nil
		}
		if err == nil && n != nil {
			if tag, ids, ok := parseNotice(n.Payload); !ok {
				b.log.Warn("pgstore: unreadable change notice ignored", "table", b.name, "payload", n.Payload)
			} else if tag != b.tag && len(ids) > 0 {
				feed.Changed(ids)
			}
			continue
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		// A quiet interval: check the connection answers within half
		// another, so a hung one is reported within 1.5 intervals.
		pctx, cancel := context.WithTimeout(b.ctx, b.ping/2)
		err = conn.Ping(pctx)
		cancel()
		if b.ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
