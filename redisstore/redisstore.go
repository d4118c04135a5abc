package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// Defaults for zero Options fields.
const (
	DefaultPrefix       = "usersessions"
	DefaultPingInterval = time.Second
)

// schemaVersion is the version of the key layout Open writes; Open refuses
// (usersessions.ErrSchema) a prefix whose stored version is newer.
const schemaVersion = 1

const (
	// expiryMargin is how long Redis keeps a record past its absolute
	// lifetime before its own expiry removes it (ttl): long enough for
	// cleanup, which runs every CleanupInterval (default one hour), to
	// remove it first and keep its history entry.
	expiryMargin = 24 * time.Hour
	// maxTTL is the longest TTL given to Redis; a longer lifetime gets
	// none (cleanup alone removes the record).
	maxTTL = 100 * 365 * 24 * time.Hour
)

// Options configure a Backend. A nil *Options means all defaults.
type Options struct {
	// Prefix starts every key and the change notices' channel, default
	// "usersessions": 1 to 64 letters, digits, or "_-.:" characters.
	// Apps that share a server keep apart by prefix.
	Prefix string
	// PingInterval is how often the change feed's connection is checked
	// while no notice arrives; a ping that fails or does not answer
	// within half an interval reports the feed lost. Default 1 s.
	PingInterval time.Duration
}

var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// Backend is a usersessions.Backend and backend.SharedBackend over a
// Redis or Valkey server (or Redis Cluster). Its methods are safe for
// concurrent use. The Store that owns it closes it.
type Backend struct {
	client  rueidis.Client
	feedOpt rueidis.ClientOption // for the change feed's own connection
	prefix  string
	base    string // prefix + ":"
	tag     string // this Backend's instance tag in notices
	ping    time.Duration
	log     *slog.Logger

	idle   atomic.Int64 // idle timeout in force, ns (set by Open)
	closed atomic.Bool

	// The change feed (feed.go).
	ctx        context.Context // cancelled by Close
	cancel     context.CancelFunc
	subscribed atomic.Bool
	feedDone   chan struct{} // closed when the feed goroutine ends
	closeOnce  sync.Once

	// Test hooks: wrapFeedConn wraps the feed's connections; testMoveStep
	// runs after each step of a move (move.go).
	wrapFeedConn func(conn net.Conn) net.Conn
	testMoveStep func(step int) error
}

var (
	_ usersessions.Backend  = (*Backend)(nil)
	_ backend.SharedBackend = (*Backend)(nil)
)

// schemes are the URL schemes Open takes: rueidis's (valkey:// is Valkey's
// name for redis://, unix:// a server's unix socket).
var schemes = map[string]bool{"redis": true, "rediss": true, "valkey": true, "valkeys": true, "unix": true}

// Open connects to the server at url and returns a Backend. The URL is
// redis://[user:password@]host[:port][/db] (rediss:// for TLS;
// ?addr=host:port repeated lists more nodes of a cluster), or
// unix:///path/to/redis.sock. A Redis Cluster is recognised by itself.
// Open does not touch the data: the Store's call of Backend.Open does.
// The connection is checked with one PING.
func Open(ctx context.Context, url string, opts *Options) (*Backend, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !prefixPattern.MatchString(o.Prefix) {
		return nil, fmt.Errorf("redisstore: prefix %q: want 1 to 64 letters, digits or _-.: characters", o.Prefix)
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	opt, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	var tag [8]byte
	_, _ = rand.Read(tag[:])
	b := &Backend{
		prefix:   o.Prefix,
		base:     o.Prefix + ":",
		tag:      hex.EncodeToString(tag[:]),
		ping:     o.PingInterval,
		log:      slog.Default(),
		feedDone: make(chan struct{}),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())

	// The feed's client: no client-side caching, its own name, so that
	// operators see it in CLIENT LIST.
	b.feedOpt = opt
	b.feedOpt.DisableCache = true
	b.feedOpt.ClientName = b.FeedName()

	// Reads are retried once by retryRead, never for long by rueidis: a
	// call on a dead server must fail with ErrUnavailable at once.
	opt.DisableRetry = true
	opt.ClientName = "usersessions"
	opt.CacheSizeEachConn = 16 << 20 // locators only
	b.client, err = rueidis.NewClient(opt)
	if err != nil {
		b.cancel()
		return nil, b.mapErr("open", err)
	}
	if err := b.client.Do(ctx, b.client.B().Ping().Build()).Error(); err != nil {
		b.cancel()
		b.client.Close()
		return nil, b.mapErr("open", err)
	}
	return b, nil
}

// parseURL checks url's scheme and reads it into client options with the
// dial timeout set.
func parseURL(raw string) (rueidis.ClientOption, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok || !schemes[strings.ToLower(scheme)] {
		return rueidis.ClientOption{}, errors.New("redisstore: want a redis://, rediss:// or unix:// URL")
	}
	// rueidis's parser wants the scheme in lower case.
	opt, err := rueidis.ParseURL(strings.ToLower(scheme) + raw[len(scheme):])
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // without the URL, which may hold a password
		}
		return rueidis.ClientOption{}, fmt.Errorf("redisstore: bad URL: %s", redactErr(err, raw))
	}
	if opt.Dialer.Timeout == 0 {
		opt.Dialer.Timeout = 5 * time.Second
	}
	return opt, nil
}

// redactErr is err's message with the URL's password, if any, removed.
func redactErr(err error, raw string) string {
	msg := err.Error()
	if u, perr := url.Parse(raw); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// String describes the Backend for logs and Store.Path: "redis prefix
// usersessions". It never shows the URL (it may hold a password).
func (b *Backend) String() string { return "redis prefix " + b.prefix }

// Prefix returns the key prefix.
func (b *Backend) Prefix() string { return b.prefix }

// FeedName is the client name of the change feed's connection (visible in
// CLIENT LIST): "usersessions-feed-" and this Backend's instance tag.
func (b *Backend) FeedName() string { return "usersessions-feed-" + b.tag }

// idleNow is the idle timeout in force.
func (b *Backend) idleNow() time.Duration { return time.Duration(b.idle.Load()) }

// Open checks the stored schema version and sets the idle timeout in
// force: idle, or for a negative idle the one stored by the last Open (0
// if none). A changed idle timeout recomputes every deadline (a full pass
// over the records, at Open only) and is stored. It runs under a lock key,
// so instances starting at once do not race. It also logs a warning when
// the server's persistence could bring back a revoked session after a
// restart.
func (b *Backend) Open(ctx context.Context, idle time.Duration, log *slog.Logger) (time.Duration, error) {
	if b.closed.Load() {
		return 0, usersessions.ErrClosed
	}
	if log != nil {
		b.log = log
	}
	b.checkPersistence(ctx)
	var inForce time.Duration
	err := b.withLock(ctx, func() error {
		settings, err := b.client.Do(ctx, b.client.B().Hgetall().Key(b.settingsKey()).Build()).AsStrMap()
		if err != nil {
			return err
		}
		if v, ok := settings["schema"]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n > schemaVersion {
				return fmt.Errorf("redisstore: prefix %s has schema version %q, this build knows %d: %w", b.prefix, v, schemaVersion, usersessions.ErrSchema)
			}
		}
		stored := int64(-1)
		if v, ok := settings["idle"]; ok {
			if stored, err = strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("redisstore: prefix %s: stored idle timeout %q: %w", b.prefix, v, usersessions.ErrCorrupt)
			}
		}
		inForce = idle
		if idle < 0 {
			inForce = time.Duration(max(stored, 0))
		}
		b.idle.Store(int64(inForce))
		if int64(inForce) != stored {
			n, err := b.reindex(ctx)
			if err != nil {
				return err
			}
			if stored >= 0 {
				b.log.Info("redisstore: idle timeout changed: deadlines recomputed", "prefix", b.prefix,
					"from", time.Duration(stored), "to", inForce, "records", n)
			}
		}
		return b.client.Do(ctx, b.client.B().Hset().Key(b.settingsKey()).FieldValue().
			FieldValue("schema", strconv.Itoa(schemaVersion)).FieldValue("idle", strconv.FormatInt(int64(inForce), 10)).Build()).Error()
	})
	if err != nil {
		return 0, b.mapErr("open", err)
	}
	return inForce, nil
}

// lockTTL bounds how long a crashed Open holds the settings lock.
const lockTTL = 30 * time.Second

// withLock runs fn holding the settings lock, waiting for it up to lockTTL.
func (b *Backend) withLock(ctx context.Context, fn func() error) error {
	var n [8]byte
	_, _ = rand.Read(n[:])
	nonce := hex.EncodeToString(n[:])
	deadline := time.Now().Add(lockTTL)
	for {
		err := b.client.Do(ctx, b.client.B().Set().Key(b.lockKey()).Value(nonce).Nx().Px(lockTTL).Build()).Error()
		if err == nil {
			break
		}
		if !rueidis.IsRedisNil(err) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redisstore: prefix %s: settings locked by another instance for %v", b.prefix, lockTTL)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = b.eval(ctx, sCAS, []string{b.lockKey()}, nonce, "", "").Error()
	}()
	return fn()
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkPersistence logs a warning when the server keeps data in a way
// that a restart could bring back a revoked session: snapshots (RDB) or an
// append-only file not fsynced on every write. A server without any
// persistence is safe (a restart forgets every session: everyone signs in
// again), and so is appendfsync always. Servers that refuse CONFIG GET
// (managed services) are not judged.
func (b *Backend) checkPersistence(ctx context.Context) {
	cfg := map[string]string{}
	for _, name := range []string{"appendonly", "appendfsync", "save"} {
		kv, err := b.client.Do(ctx, b.client.B().ConfigGet().Parameter(name).Build()).AsStrMap()
		if err != nil {
			b.log.Debug("redisstore: cannot read the server's persistence settings", "err", err)
			return
		}
		cfg[name] = kv[name]
	}
	aof := cfg["appendonly"] == "yes"
	switch {
	case aof && cfg["appendfsync"] == "always":
	case !aof && cfg["save"] == "":
		b.log.Info("redisstore: the server keeps no data on disk: a restart ends every session (safe: nothing revoked comes back)", "prefix", b.prefix)
	default:
		b.log.Warn("redisstore: the server's persistence can lose the last writes in a crash, and a restart could bring back a session revoked just before; "+
			"use appendonly yes with appendfsync always, or no persistence at all",
			"prefix", b.prefix, "appendonly", cfg["appendonly"], "appendfsync", cfg["appendfsync"], "save", cfg["save"])
	}
}

// Close stops the change feed and closes the connections. It does not wait
// for a hung server: rueidis's Close gives up on it.
func (b *Backend) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		b.cancel()
		if b.subscribed.Load() {
			select {
			case <-b.feedDone:
			case <-time.After(3 * time.Second):
				err = errors.New("redisstore: close: the change feed did not stop within 3s")
			}
		}
		done := make(chan struct{})
		go func() {
			b.client.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			err = errors.Join(err, errors.New("redisstore: close: connections still in use after 3s"))
		}
	})
	return err
}
