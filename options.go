package usersessions

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/usersessions/usersessions/backend"
)

// Options and the settings they group (Privacy, Hooks), with their
// defaults.

// UseStoredIdleTimeout, as Options.IdleTimeout, keeps the idle timeout the
// database file was last opened with (0 for a new file).
const UseStoredIdleTimeout = backend.UseStoredIdleTimeout

// The defaults applied to zero Options fields, as each field documents.
const (
	defaultLifetime        = 14 * 24 * time.Hour
	defaultTouchInterval   = time.Minute
	defaultOpenTimeout     = time.Second
	defaultCacheBytes      = 64 << 20
	defaultCleanupInterval = time.Hour
)

// Options configure a Store. The zero value (or a nil *Options) is useful:
// 14-day sessions, no idle timeout, a 64 MiB cache, hourly cleanup.
type Options struct {
	// Lifetime is the absolute lifetime of a session from its creation.
	// Default 14 days.
	Lifetime time.Duration

	// IdleTimeout ends a session after this long without activity (Touch,
	// Save, Create). 0 disables it. UseStoredIdleTimeout (any negative
	// value) takes the one the file was last opened with: tools that open
	// an application's database use it so they apply the application's
	// setting instead of their own.
	//
	// The expiry index depends on this setting, so opening a file with a
	// different one recomputes the index once (O(sessions)).
	IdleTimeout time.Duration

	// NoCache selects the "uncached" mode: every Load reads bbolt. The
	// default is a ristretto cache in front of bbolt.
	NoCache bool

	// CacheBytes bounds the cache's memory, measured as the size of the
	// cached records. Default 64 MiB.
	CacheBytes int64

	// TouchInterval is how often activity recorded by Touch is written to
	// disk: at most one persisted LastSeen update per session per interval.
	// Loads always report the freshest value from memory. Default 1 minute.
	TouchInterval time.Duration

	// OpenTimeout is how long Open waits for a file held by another process
	// before failing with ErrLocked. Default 1 second.
	OpenTimeout time.Duration

	// CleanupInterval is how often a background goroutine removes expired
	// sessions. Default 1 hour; a negative value disables
	// background cleanup (call ClearExpired yourself). It stops on Close.
	CleanupInterval time.Duration

	// Now is the clock, for tests. Default time.Now. A custom clock is
	// read exactly on every call; the default one is read coarsely on the
	// load path (see Store.Touch).
	Now func() time.Time

	// MaxPerUser caps the live sessions of one user; 0 means no cap.
	// Creating one more (Create, RotateUser, or a Save that sets the
	// UserID) ends the least recently active of the others, with reason
	// EndLimit, in the same transaction: concurrent sign-ins cannot
	// overshoot it.
	MaxPerUser int

	// Privacy limits what is kept of clients' addresses and user agents.
	Privacy Privacy

	// Hooks are called on sign-ins and on every end of a session.
	Hooks Hooks

	// History keeps ended sessions this long, for Store.History ("recently
	// ended" lists, who ended what and why); 0 keeps none. Cleanup removes
	// them with expired sessions.
	History time.Duration

	// SignInCheck, when set, marks sign-ins that look like a takeover (a
	// new device, a new country, impossible travel) and calls
	// Hooks.Suspicious: see SignInCheck. Nil: no check, no lookups.
	SignInCheck *SignInCheck

	// StrictRevocation makes every Load confirm the session with the
	// Backend: the Store keeps no cache (as with NoCache), so each Load is
	// one Backend read. On a shared Backend that closes the window (one
	// change notice) in which another instance's revocation is not yet
	// seen here.
	StrictRevocation bool

	// Logger receives problems the Store handles by itself (a corrupt
	// record skipped during cleanup, a failed background flush). Default:
	// slog.Default().
	Logger *slog.Logger
}

// withDefaults returns a copy of o with every zero field set to its default.
func (o *Options) withDefaults() Options {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = defaultLifetime
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = defaultCacheBytes
	}
	if opts.TouchInterval <= 0 {
		opts.TouchInterval = defaultTouchInterval
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = defaultOpenTimeout
	}
	if opts.CleanupInterval == 0 {
		opts.CleanupInterval = defaultCleanupInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return opts
}

// Privacy limits what the Store keeps of a client. It applies before
// anything is stored (the database, the history) or held in memory.
type Privacy struct {
	// IPPrefixV4 and IPPrefixV6 keep only this many leading bits of an
	// address (24 and 48 are common choices); 0 keeps the full address.
	// An IPv6 address that embeds an IPv4 one (6to4, Teredo,
	// IPv4-compatible; the address Geo.Location looks up) is kept, under
	// IPPrefixV4, as that IPv4 address's prefix. Locations still resolve
	// from the kept network where the GeoIP database allows.
	IPPrefixV4, IPPrefixV6 int
	// NoUserAgent keeps the device name ("Safari on iPhone", see Device)
	// in place of the raw user agent.
	NoUserAgent bool
}

// address is what the prefixes keep of ip. An IPv6 address that embeds an
// IPv4 one would keep the exact IPv4 address under any IPPrefixV6 of 48 or
// more (6to4 holds it in bits 16-48), so under IPPrefixV4 it becomes that
// IPv4 address, the one geo lookups use, before the prefix applies.
// Loopback and unspecified addresses embed none.
func (p *Privacy) address(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if p.IPPrefixV4 > 0 && !ip.IsLoopback() && !ip.IsUnspecified() {
		ip = geoIPv4Of(ip)
	}
	bits := p.IPPrefixV6
	if ip.Is4() {
		bits = p.IPPrefixV4
	}
	if bits > 0 && bits < ip.BitLen() {
		if pfx, err := ip.Prefix(bits); err == nil {
			return pfx.Addr()
		}
	}
	return ip
}

// active reports whether Options.Privacy changes anything.
func (p *Privacy) active() bool { return p.IPPrefixV4 > 0 || p.IPPrefixV6 > 0 || p.NoUserAgent }

// validate checks the prefix lengths.
func (p *Privacy) validate() error {
	if p.IPPrefixV4 < 0 || p.IPPrefixV4 > 32 || p.IPPrefixV6 < 0 || p.IPPrefixV6 > 128 {
		return fmt.Errorf("usersessions: Privacy prefixes %d and %d: want 0-32 and 0-128", p.IPPrefixV4, p.IPPrefixV6)
	}
	return nil
}

// Hooks are called after the change they report is durable, outside any
// transaction, inline: on the goroutine of the call that made the change
// (a request's, or the cleanup goroutine's for expiry), which waits for
// the hook and for nothing else. Keep them short, or hand work to a
// goroutine of your own. A panicking hook is recovered and logged.
type Hooks struct {
	// Created reports a session that a user now has: Create for a user,
	// RotateUser, or a Save that set another UserID. newDevice is true
	// when no earlier session of the user, live or in History, had the
	// same device name: the moment to email "new sign-in from Chrome on
	// Windows".
	Created func(ctx context.Context, s *Session, newDevice bool)
	// Ended reports a session that ended, for every reason, expiry and
	// idle timeouts (from cleanup) included.
	Ended func(ctx context.Context, s *Session, reason EndReason)
	// Suspicious reports a sign-in that Options.SignInCheck marked, once,
	// after the mark is durable and before Created.
	Suspicious func(ctx context.Context, s *Session, mark SignInMark)
}
