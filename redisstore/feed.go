package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// Change notices.
//
// The scripts that change or remove records (Update, Delete, DeleteByUser,
// DeleteExpired, a move, the victims of a limit) PUBLISH the IDs they
// changed on the channel P:changes inside the script, so a notice is sent
// if and only if the change happened. Create and Touch send none: a new
// session is in no other instance's cache, and activity is not a
// revocation. A notice's payload is "v1 TAG ID ID ...": the sending
// Backend's instance tag and at most 200 IDs as text.
//
// Each Backend subscribes on a connection of its own (client name
// FeedName) and pings it every PingInterval: Redis delivers a channel's
// messages to a subscriber in order, so a ping answered proves that no
// notice sent before it was missed. A connection that closes, or a ping
// that fails or goes unanswered for half an interval, reports the feed
// lost at once; the feed is restored when a new subscription is live.
// A server that restarts closes the connection, so a restart (empty or
// not) always passes through Lost and Restored, and the Store drops its
// cache.

// parseNotice returns a payload's instance tag and IDs; ok is false for a
// payload this version cannot read.
func parseNotice(payload string) (tag string, ids []backend.ID, ok bool) {
	fields := strings.Fields(payload)
	if len(fields) < 2 || fields[0] != "v1" {
		return "", nil, false
	}
	ids = make([]backend.ID, 0, len(fields)-2)
	for _, f := range fields[2:] {
		id, ok := backend.ParseID(f)
		if !ok {
			return "", nil, false
		}
		ids = append(ids, id)
	}
	return fields[1], ids, true
}

// Subscribe starts delivering other Backends' change notices under this
// prefix to feed, until Close. It returns once the first subscription is
// live, or the error of the first attempt. Notices this Backend sent are
// not delivered.
func (b *Backend) Subscribe(ctx context.Context, feed backend.ChangeFeed) error {
	if b.closed.Load() {
		return usersessions.ErrClosed
	}
	if !b.subscribed.CompareAndSwap(false, true) {
		return errors.New("redisstore: Subscribe called twice")
	}
	c, err := b.listen(ctx, feed)
	if err != nil {
		b.subscribed.Store(false)
		return b.mapErr("subscribe", err)
	}
	go b.feedLoop(c, feed)
	return nil
}

// feedConn is one subscribed connection of the feed.
type feedConn struct {
	client rueidis.Client
	dc     rueidis.DedicatedClient
	closed <-chan error // receives why the connection closed
}

func (c *feedConn) close() {
	c.dc.Close()
	c.client.Close()
}

// listen opens a feed connection and subscribes.
func (b *Backend) listen(ctx context.Context, feed backend.ChangeFeed) (*feedConn, error) {
	ctx, cancel := context.WithTimeout(ctx, max(5*time.Second, 2*b.ping))
	defer cancel()
	stop := context.AfterFunc(b.ctx, cancel) // Close interrupts
	defer stop()
	opt := b.feedOpt
	if wrap := b.wrapFeedConn; wrap != nil {
		dial := opt.DialCtxFn
		opt.DialCtxFn = func(ctx context.Context, addr string, d *net.Dialer, cfg *tls.Config) (net.Conn, error) {
			var conn net.Conn
			var err error
			switch {
			case dial != nil:
				conn, err = dial(ctx, addr, d, cfg)
			case cfg != nil:
				conn, err = (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", addr)
			default:
				conn, err = d.DialContext(ctx, "tcp", addr)
			}
			if err != nil {
				return nil, err
			}
			return wrap(conn), nil
		}
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, err
	}
	dc, _ := client.Dedicate()
	c := &feedConn{client: client, dc: dc}
	c.closed = dc.SetPubSubHooks(rueidis.PubSubHooks{
		OnMessage: func(m rueidis.PubSubMessage) { b.deliver(m.Message, feed) },
	})
	if err := dc.Do(ctx, dc.B().Subscribe().Channel(b.channel()).Build()).Error(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// deliver passes a notice of another Backend on to feed.
func (b *Backend) deliver(payload string, feed backend.ChangeFeed) {
	tag, ids, ok := parseNotice(payload)
	switch {
	case !ok:
		b.log.Warn("redisstore: unreadable change notice ignored", "prefix", b.prefix, "payload", payload)
	case tag != b.tag && len(ids) > 0:
		feed.Changed(ids)
	}
}

// feedLoop keeps the feed connected until Close, reporting Lost when a
// connection fails and Restored when a new one is subscribed.
func (b *Backend) feedLoop(c *feedConn, feed backend.ChangeFeed) {
	defer close(b.feedDone)
	for {
		err := b.serve(c)
		// Closing a hung connection can take until rueidis gives up on
		// it: report first, close aside.
		go c.close()
		if b.ctx.Err() != nil {
			return
		}
		feed.Lost()
		b.log.Warn("redisstore: change feed lost; reconnecting", "prefix", b.prefix, "err", err)
		backoff := 20 * time.Millisecond
		for {
			c, err = b.listen(b.ctx, feed)
			if err == nil {
				break
			}
			if sleep(b.ctx, backoff) != nil {
				return
			}
			backoff = min(2*backoff, 2*time.Second)
		}
		feed.Restored()
		b.log.Info("redisstore: change feed restored", "prefix", b.prefix)
	}
}

// serve watches a subscribed connection, pinging it every PingInterval,
// and returns what ended its usefulness, or nil on Close.
func (b *Backend) serve(c *feedConn) error {
	t := time.NewTicker(b.ping)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return nil
		case err := <-c.closed:
			return errOr(err, errors.New("redisstore: the feed's connection closed"))
		case <-t.C:
		}
		// The reply must come within half an interval. The ping runs
		// apart, so that a connection that hangs cannot hang the feed.
		answered := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(b.ctx, b.ping/2)
			defer cancel()
			answered <- c.dc.Do(ctx, c.dc.B().Ping().Build()).Error()
		}()
		select {
		case err := <-answered:
			if b.ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
		case <-time.After(b.ping/2 + 10*time.Millisecond):
			return errors.New("redisstore: the feed's ping went unanswered")
		case <-b.ctx.Done():
			return nil
		}
	}
}
