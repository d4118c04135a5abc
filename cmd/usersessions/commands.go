package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/control"
)

// ---- clear-expired ----

func cmdClearExpired(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("clear-expired", "clear-expired [-db PATH] [-skip-locked] [-dry-run] [-idle-timeout D -force]", `
Removes the sessions past their deadline. Safe to run from cron: without a
terminal it prints only the summary line. A running app holds the database
open and clears expired sessions by itself (Options.CleanupInterval); the
command then goes through the app's control socket if it serves one
(control.Serve), and otherwise fails at once with "in use by
another process", or with -skip-locked prints that it skipped and exits 0.

The deadlines follow the idle timeout the app stored in the file.
-idle-timeout D judges them by D instead, for this run only (the file keeps
the app's setting): since that removes sessions the app would keep, it needs
-force. -dry-run lists what would be removed and removes nothing.`, stderr)
	db := addDBFlags(fs)
	skipLocked := fs.Bool("skip-locked", false, "exit 0 when the database is in use by another process")
	dryRun := fs.Bool("dry-run", false, "list the sessions that would be removed; remove nothing")
	force := fs.Bool("force", false, "with -idle-timeout: really remove the sessions it ends")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if db.idle.set && !*force && !*dryRun {
		return usagef(fs, "-idle-timeout %v removes the sessions idle that long even if the app keeps them; "+
			"add -dry-run to see which, or -force to remove them", db.idle.d)
	}
	if *force && !db.idle.set {
		return usagef(fs, "-force goes with -idle-timeout")
	}
	store, err := openExisting(db, stderr)
	if err != nil {
		if *skipLocked && errors.Is(err, usersessions.ErrLocked) {
			fmt.Fprintf(stdout, "skipped: %s is in use by another process\n", redactDB(db.path))
			return nil
		}
		return err
	}
	defer closeStore(store, &err)
	ctx, stop := signalContext()
	defer stop()

	if *dryRun {
		return dryRunClear(ctx, store, &db.idle, stdout, stderr)
	}
	start := time.Now()
	var removed int
	if db.idle.set {
		removed, err = clearByOverride(ctx, store, &db.idle, stderr)
	} else {
		removed, err = clearExpired(ctx, store, stderr)
	}
	if err != nil {
		return fmt.Errorf("clearing expired sessions: %w", err)
	}
	left, err := store.Count(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed %d expired %s in %v, %d left\n",
		removed, plural(removed, "session"), time.Since(start).Round(time.Millisecond), left)
	return nil
}

// expiredUnder returns the IDs of the sessions that idle judges expired at
// now, in ID order, and prints each on w when w is not nil. Unreadable
// records are skipped, as ClearExpired skips them.
func expiredUnder(ctx context.Context, store sessionStore, idle *idleFlag, now time.Time, w io.Writer) ([]string, error) {
	var ids []string
	var tw *tabwriter.Writer
	if w != nil {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	}
	for s, err := range store.All(ctx, usersessions.Filter{}) {
		if err != nil {
			if errors.Is(err, usersessions.ErrCorrupt) {
				continue
			}
			return nil, err
		}
		if idle.active(s, now) {
			continue
		}
		if tw != nil {
			if len(ids) == 0 {
				fmt.Fprintln(tw, "ID\tUSER\tLAST SEEN\tEXPIRED")
			}
			user := s.UserID
			if user == "" {
				user = "(anonymous)"
			}
			last, dl := relTimes(s.LastSeen, idle.deadline(s), now)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, printable(user), last, dl)
		}
		ids = append(ids, s.ID)
	}
	if tw != nil {
		if len(ids) > 0 {
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// dryRunClear lists what clear-expired would remove.
func dryRunClear(ctx context.Context, store sessionStore, idle *idleFlag, stdout, stderr io.Writer) error {
	ids, err := expiredUnder(ctx, store, idle, time.Now(), stdout)
	if err != nil {
		return err
	}
	total, err := store.Count(ctx)
	if err != nil {
		return err
	}
	how := "idle timeout " + idleString(idle.effective(store))
	if idle.set {
		how += " from -idle-timeout"
	} else {
		how += ", as stored by the app"
	}
	fmt.Fprintf(stdout, "would remove %d expired %s (%s), %d left; nothing removed\n",
		len(ids), plural(len(ids), "session"), how, total-len(ids))
	return nil
}

// clearByOverride removes the sessions expired under the -idle-timeout
// override one by one, by ID, leaving the file's stored idle timeout (and
// its expiry index) as the app wrote them. Deletes run a few at a time so
// the store's group commit shares fsyncs among them.
func clearByOverride(ctx context.Context, store sessionStore, idle *idleFlag, stderr io.Writer) (int, error) {
	ids, err := expiredUnder(ctx, store, idle, time.Now(), nil)
	if err != nil {
		return 0, err
	}
	bar := newProgress(stderr, "removing", int64(len(ids)), false)
	defer bar.Done()
	const workers = 32
	var (
		mu       sync.Mutex
		removed  int
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan string)
	for range workers {
		wg.Go(func() {
			for id := range next {
				err := store.End(ctx, id, usersessions.EndOptions{})
				mu.Lock()
				switch {
				case err == nil:
					removed++
					bar.Set(int64(removed))
				case errors.Is(err, usersessions.ErrNotFound): // gone meanwhile
				case firstErr == nil:
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, id := range ids {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		select {
		case next <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return removed, firstErr
}

// idleString formats an idle timeout, "none" for 0.
func idleString(d time.Duration) string {
	if d <= 0 {
		return "none"
	}
	return d.String()
}

// clearExpired runs store.ClearExpired. The store offers no progress
// callback, so on a terminal it first counts the expired sessions (a scan
// with a bar over all records), then runs ClearExpired in the background
// and draws its progress from Stats().Deletes, which grows after each
// cleanup batch of up to 1000 sessions. Without a terminal it only runs
// ClearExpired: no extra scan under cron.
func clearExpired(ctx context.Context, ss sessionStore, stderr io.Writer) (int, error) {
	store, local := ss.(*usersessions.Store)
	if !local || !isTerminal(stderr) {
		return ss.ClearExpired(ctx)
	}
	total, err := store.Count(ctx)
	if err != nil {
		return 0, err
	}
	bar := newProgress(stderr, "checking", int64(total), false)
	expired, seen := 0, 0
	now := time.Now()
	for s, err := range store.All(ctx, usersessions.Filter{}) {
		seen++
		bar.Set(int64(seen))
		if err != nil {
			if errors.Is(err, usersessions.ErrCorrupt) {
				continue // ClearExpired skips and logs it too
			}
			bar.Done()
			return 0, err
		}
		if !s.Active(now) {
			expired++
		}
	}
	bar.Done()

	bar = newProgress(stderr, "removing", int64(expired), false)
	defer bar.Done()
	before := store.Stats().Deletes
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := store.ClearExpired(ctx)
		done <- result{n, err}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-done:
			bar.Set(int64(r.n))
			return r.n, r.err
		case <-tick.C:
			bar.Set(int64(store.Stats().Deletes - before))
		}
	}
}

// ---- ls ----

// sessionLine is one session in ls -json: one JSON object per line.
type sessionLine struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	Device    string    `json:"device"`
	Location  string    `json:"location"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	ExpiresAt time.Time `json:"expires_at"` // the deadline: idle timeout included
	Active    bool      `json:"active"`
}

// cmdList is the ls command. Its length is mostly the help text and the
// flags; reading the sessions is listRows.
func cmdList(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("ls", "ls [-db PATH] [-user U] [-expired | -all] [-json] [-limit N] [-geoip PATH] [-idle-timeout D]", `
Lists active sessions (-expired: only expired ones not cleared yet, -all:
both), newest activity first: as a table with times relative to now, or
with -json one JSON object per line, with RFC 3339 times in UTC (whole
seconds). -idle-timeout D shows what the sessions' state would be
under that idle timeout; the file and the app are not changed.`, stderr)
	db := addDBFlags(fs)
	user := fs.String("user", "", "only the sessions of this user `ID`")
	expired := fs.Bool("expired", false, "list only expired sessions")
	all := fs.Bool("all", false, "list active and expired sessions")
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	geoPath := fs.String("geoip", "", "GeoIP City or Country `.mmdb` file (or folder) for the location column")
	limit := fs.Int("limit", 0, "list at most `N` sessions, the N most recently active (0: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *limit < 0 {
		return usagef(fs, "-limit wants a number of sessions, 0 or more")
	}
	if *expired && *all {
		return usagef(fs, "-expired and -all exclude each other")
	}
	filter := usersessions.Filter{UserID: *user, State: usersessions.ActiveOnly}
	switch {
	case *expired:
		filter.State = usersessions.ExpiredOnly
	case *all:
		filter.State = usersessions.AnyState
	}
	geo, err := openGeo(*geoPath, nil)
	if err != nil {
		return err
	}
	defer geo.Close()
	store, err := openExisting(db, stderr)
	if err != nil {
		return err
	}
	defer closeStore(store, &err)
	ctx, stop := signalContext()
	defer stop()

	now := time.Now()
	rows, bad, err := listRows(ctx, store, filter, &db.idle, now, stderr)
	if err != nil {
		return err
	}
	// One order for both forms, so that -limit N picks the same sessions
	// in the table and in -json.
	total := len(rows)
	rows = newestFirst(rows, *limit)
	if *asJSON {
		err = printJSONLines(stdout, rows, geo, now, &db.idle)
	} else {
		err = printTable(stdout, rows, total, *limit, geo, now, filter.State, &db.idle)
	}
	if err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d unreadable session %s skipped (%s is damaged)", bad, plural(bad, "record"), redactDB(db.path))
	}
	return nil
}

// listRows reads the sessions ls lists: those filter matches, judged under
// the -idle-timeout override when one is given. Unreadable records are
// reported on stderr, skipped and counted in bad.
func listRows(ctx context.Context, store sessionStore, filter usersessions.Filter, idle *idleFlag, now time.Time, stderr io.Writer) (rows []*usersessions.Session, bad int, err error) {
	query := filter
	if idle.set {
		query.State = usersessions.AnyState // judged below, by the override
	}
	for s, err := range store.All(ctx, query) {
		if err == nil && idle.set && !stateMatches(filter.State, idle.active(s, now)) {
			continue
		}
		if err != nil {
			if errors.Is(err, usersessions.ErrCorrupt) {
				fmt.Fprintf(stderr, "usersessions: skipping unreadable record: %v\n", err)
				bad++
				continue
			}
			return nil, 0, err
		}
		rows = append(rows, s)
	}
	return rows, bad, nil
}

// newestFirst sorts rows by last activity, newest first (then by ID, so
// the order is total), and keeps the first limit of them (0: all).
func newestFirst(rows []*usersessions.Session, limit int) []*usersessions.Session {
	slices.SortFunc(rows, func(a, b *usersessions.Session) int {
		return cmp.Or(b.LastSeen.Compare(a.LastSeen), strings.Compare(a.ID, b.ID))
	})
	if limit > 0 && limit < len(rows) {
		rows = rows[:limit]
	}
	return rows
}

// printJSONLines writes one sessionLine per session.
func printJSONLines(w io.Writer, rows []*usersessions.Session, geo *usersessions.Geo, now time.Time, idle *idleFlag) error {
	enc := json.NewEncoder(w)
	for _, s := range rows {
		line := sessionLine{
			ID: s.ID, UserID: s.UserID, UserAgent: s.UserAgent,
			Device: usersessions.Device(s.UserAgent), Location: geo.Location(s.IP),
			CreatedAt: jsonTime(s.CreatedAt), LastSeen: jsonTime(s.LastSeen), ExpiresAt: jsonTime(idle.deadline(s)),
			Active: idle.active(s, now),
		}
		if s.IP.IsValid() {
			line.IP = s.IP.String()
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}

// stateMatches reports whether a session that is active or not belongs in
// a listing of state.
func stateMatches(state usersessions.State, active bool) bool {
	switch state {
	case usersessions.ActiveOnly:
		return active
	case usersessions.ExpiredOnly:
		return !active
	}
	return true
}

// printTable writes rows (the first of total sessions, see newestFirst)
// as a table, with the count under it.
func printTable(w io.Writer, rows []*usersessions.Session, total, limit int, geo *usersessions.Geo, now time.Time, state usersessions.State, idle *idleFlag) error {
	if len(rows) == 0 {
		what := map[usersessions.State]string{
			usersessions.ActiveOnly:  "no active sessions",
			usersessions.ExpiredOnly: "no expired sessions",
			usersessions.AnyState:    "no sessions",
		}[state]
		_, err := fmt.Fprintln(w, what)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tDEVICE\tLOCATION\tIP\tLAST SEEN\tEXPIRES")
	for _, s := range rows {
		user := s.UserID
		if user == "" {
			user = "(anonymous)"
		}
		ip := ""
		if s.IP.IsValid() {
			ip = s.IP.String()
		}
		last, expires := relTimes(s.LastSeen, idle.deadline(s), now)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, printable(user),
			dash(printable(usersessions.Device(s.UserAgent))), dash(printable(geo.Location(s.IP))), dash(ip),
			last, expires)
	}
	if len(rows) < total {
		fmt.Fprintf(tw, "\n%d of %d sessions (-limit %d)\n", len(rows), total, limit)
	} else {
		fmt.Fprintf(tw, "\n%d %s\n", total, plural(total, "session"))
	}
	return tw.Flush()
}

// openGeo opens the optional GeoIP database; "" gives a nil *Geo, which
// knows no locations.
func openGeo(path string, opts *usersessions.GeoOptions) (*usersessions.Geo, error) {
	if path == "" {
		return nil, nil
	}
	geo, err := usersessions.OpenGeo(path, opts)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("GeoIP database %s does not exist (get one with \"usersessions geoip download\")", path)
		}
		return nil, fmt.Errorf("GeoIP database %s: %w", path, err)
	}
	return geo, nil
}

// ---- revoke ----

func cmdRevoke(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("revoke", "revoke [-db PATH] (-user U [-keep ID] | -id ID)", `
Ends sessions: every session of a user (-keep spares one of them), or the one
session with a given ID. Prints how many were ended; exits 1 when no
session matched (an unknown -id, or a user without sessions).`, stderr)
	db := addDBFlags(fs)
	user := fs.String("user", "", "end the sessions of this user `ID`")
	id := fs.String("id", "", "end the session with this `ID`")
	keep := fs.String("keep", "", "with -user: keep the session with this `ID`")
	hideFlags(fs, "idle-timeout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *keep != "" && *user == "":
		return usagef(fs, "-keep spares one session of a user: it needs -user (-keep %s -user USER)", *keep)
	case db.idle.set:
		// It used to be accepted and stored in the file, changing which
		// sessions the next clear-expired removes.
		return usagef(fs, "-idle-timeout does not apply to revoke: it ends the sessions named, idle or not")
	case (*user == "") == (*id == ""):
		return usagef(fs, "give exactly one of -user and -id")
	}
	store, err := openExisting(db, stderr)
	if err != nil {
		return err
	}
	defer closeStore(store, &err)
	ctx, stop := signalContext()
	defer stop()

	if *id != "" {
		return revokeID(ctx, store, *id, stdout)
	}
	return revokeUser(ctx, store, *user, *keep, stdout)
}

// revokeID ends the one session with the given ID, for revoke -id.
func revokeID(ctx context.Context, store sessionStore, id string, stdout io.Writer) error {
	if err := store.End(ctx, id, usersessions.EndOptions{}); err != nil {
		if errors.Is(err, usersessions.ErrNotFound) {
			return fmt.Errorf("no session with ID %q", id)
		}
		return err
	}
	fmt.Fprintln(stdout, "revoked 1 session")
	return nil
}

// revokeUser ends every session of user but keep (if given), for revoke
// -user; no session ended is an error, so a script sees it.
func revokeUser(ctx context.Context, store sessionStore, user, keep string, stdout io.Writer) error {
	if keep != "" {
		// A mistyped -keep would otherwise end every session of the user.
		s, err := store.Get(ctx, keep)
		if errors.Is(err, usersessions.ErrNotFound) || err == nil && s.UserID != user {
			return fmt.Errorf("-keep %q is not an active session of user %q; nothing revoked", keep, user)
		}
		if err != nil {
			return err
		}
	}
	n, err := store.EndUser(ctx, user, keep, usersessions.EndOptions{})
	if err != nil {
		return err
	}
	if n == 0 {
		// Like an unknown -id: status 1, so a script sees that nothing
		// happened (a mistyped user ID, say).
		if keep != "" {
			return fmt.Errorf("user %q has no sessions besides %s; nothing revoked", user, keep)
		}
		return fmt.Errorf("no sessions of user %q matched; nothing revoked", user)
	}
	fmt.Fprintf(stdout, "revoked %d %s\n", n, plural(n, "session"))
	return nil
}

// ---- stats ----

// statsReport is the result of stats, also its -json form.
type statsReport struct {
	Path          string      `json:"path"`
	Via           string      `json:"via,omitempty"`    // the app's control socket, when the app holds the file
	Server        bool        `json:"server,omitempty"` // a database server (PostgreSQL): no file, no file size
	FileSize      int64       `json:"file_size"`
	FreeBytes     *int64      `json:"free_bytes,omitempty"` // free pages and unused tail; nil: unknown
	PageSize      int         `json:"page_size,omitempty"`
	IdleTimeout   string      `json:"idle_timeout"`            // in force for active/expired: "0s" for none
	IdleOverride  bool        `json:"idle_override,omitempty"` // IdleTimeout is -idle-timeout, not the stored one
	Total         int         `json:"total"`
	Active        int         `json:"active"`
	Expired       int         `json:"expired"`
	Anonymous     int         `json:"anonymous"`
	Users         int         `json:"users"`
	Unreadable    int         `json:"unreadable,omitempty"`
	OldestCreated *time.Time  `json:"oldest_created,omitempty"`
	NewestCreated *time.Time  `json:"newest_created,omitempty"`
	TopUsers      []userCount `json:"top_users"`
}

type userCount struct {
	UserID   string `json:"user_id"`
	Sessions int    `json:"sessions"`
	Active   int    `json:"active"`
}

// topUsers is how many users stats lists.
const topUsers = 10

func cmdStats(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("stats", "stats [-db PATH] [-json]", `
Counts the sessions (active, expired but not cleared yet, anonymous), the
distinct users and the file size, gives the oldest and newest session and the
10 users with the most sessions.`, stderr)
	db := addDBFlags(fs)
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	store, err := openExisting(db, stderr)
	if err != nil {
		return err
	}
	defer closeStore(store, &err)
	ctx, stop := signalContext()
	defer stop()

	rep := statsReport{Path: redactDB(db.path), TopUsers: []userCount{},
		IdleTimeout: db.idle.effective(store).String(), IdleOverride: db.idle.set}
	rep.fileSizes(store, db)
	now := time.Now()
	if err := rep.countSessions(ctx, store, db, now, stderr); err != nil {
		return err
	}
	if err := rep.write(stdout, *asJSON, now); err != nil {
		return err
	}
	if rep.Unreadable > 0 {
		return fmt.Errorf("%d unreadable session %s (%s is damaged)", rep.Unreadable, plural(rep.Unreadable, "record"), redactDB(db.path))
	}
	return nil
}

// fileSizes fills in the file's size and free space, as far as the way
// the database was reached tells them.
func (rep *statsReport) fileSizes(store sessionStore, db *dbFlags) {
	switch c, viaSocket := store.(appStore); {
	case viaSocket:
		// The app holds the file: only it knows the free pages.
		rep.Via = control.SocketPath(db.path)
		if f := c.Info().File; f != nil {
			free := f.FreeBytes
			rep.FileSize, rep.FreeBytes, rep.PageSize = f.Size, &free, f.PageSize
		} else if fi, err := os.Stat(db.path); err == nil {
			rep.FileSize = fi.Size()
		}
	case isDatabaseURL(db.path):
		rep.Server = true
	default:
		if fi, err := os.Stat(db.path); err == nil {
			rep.FileSize = fi.Size()
			if p := db.probe; p.Status == probeOK && p.PageSize > 0 {
				free := int64(p.FreePages)*int64(p.PageSize) + max(rep.FileSize-p.Pages*int64(p.PageSize), 0)
				rep.FreeBytes, rep.PageSize = &free, p.PageSize
			}
		}
	}
}

// countSessions reads every session once, with a progress bar on stderr,
// and counts them into rep: totals, oldest and newest, and the top users.
func (rep *statsReport) countSessions(ctx context.Context, store sessionStore, db *dbFlags, now time.Time, stderr io.Writer) error {
	count, err := store.Count(ctx)
	if err != nil {
		return err
	}
	bar := newProgress(stderr, "reading", int64(count), false)
	defer bar.Done()
	users := make(map[string]*userCount)
	seen := 0
	for s, err := range store.All(ctx, usersessions.Filter{}) {
		seen++
		bar.Set(int64(seen))
		if err != nil {
			if errors.Is(err, usersessions.ErrCorrupt) {
				rep.Unreadable++
				continue
			}
			return err
		}
		rep.add(s, db.idle.active(s, now), users)
	}
	rep.Users = len(users)
	for _, u := range users {
		rep.TopUsers = append(rep.TopUsers, *u)
	}
	slices.SortFunc(rep.TopUsers, func(a, b userCount) int {
		return cmp.Or(b.Sessions-a.Sessions, b.Active-a.Active, strings.Compare(a.UserID, b.UserID))
	})
	rep.TopUsers = rep.TopUsers[:min(len(rep.TopUsers), topUsers)]
	return nil
}

// add counts one readable session into rep and its user into users.
func (rep *statsReport) add(s *usersessions.Session, active bool, users map[string]*userCount) {
	rep.Total++
	if active {
		rep.Active++
	} else {
		rep.Expired++
	}
	if c := s.CreatedAt; rep.OldestCreated == nil || c.Before(*rep.OldestCreated) {
		rep.OldestCreated = &c
	}
	if c := s.CreatedAt; rep.NewestCreated == nil || c.After(*rep.NewestCreated) {
		rep.NewestCreated = &c
	}
	if s.UserID == "" {
		rep.Anonymous++
		return
	}
	u := users[s.UserID]
	if u == nil {
		u = &userCount{UserID: s.UserID}
		users[s.UserID] = u
	}
	u.Sessions++
	if active {
		u.Active++
	}
}

// write prints rep as text, or as one JSON object.
func (rep *statsReport) write(w io.Writer, asJSON bool, now time.Time) error {
	if !asJSON {
		return printStats(w, rep, now)
	}
	for _, t := range []**time.Time{&rep.OldestCreated, &rep.NewestCreated} {
		if *t != nil {
			j := jsonTime(**t)
			*t = &j
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func printStats(w io.Writer, rep *statsReport, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if rep.Via != "" {
		fmt.Fprintf(tw, "database\t%s (through %s)\n", rep.Path, rep.Via)
	} else {
		fmt.Fprintf(tw, "database\t%s\n", rep.Path)
	}
	if !rep.Server {
		fmt.Fprintf(tw, "file size\t%s\n", humanBytes(rep.FileSize))
	}
	if rep.FreeBytes != nil {
		hint := ""
		if *rep.FreeBytes > rep.FileSize/2 && *rep.FreeBytes > 1<<20 {
			hint = " (usersessions compact gives it back)"
		}
		fmt.Fprintf(tw, "  free\t%s, %d%%%s\n", humanBytes(*rep.FreeBytes), *rep.FreeBytes*100/max(rep.FileSize, 1), hint)
	}
	idle := rep.IdleTimeout
	if idle == "0s" {
		idle = "none"
	}
	if rep.IdleOverride {
		idle += " (-idle-timeout, not stored)"
	}
	fmt.Fprintf(tw, "idle timeout\t%s\n", idle)
	fmt.Fprintf(tw, "sessions\t%d\n", rep.Total)
	fmt.Fprintf(tw, "  active\t%d\n", rep.Active)
	fmt.Fprintf(tw, "  expired\t%d (not cleared yet)\n", rep.Expired)
	fmt.Fprintf(tw, "  anonymous\t%d\n", rep.Anonymous)
	if rep.Unreadable > 0 {
		fmt.Fprintf(tw, "  unreadable\t%d\n", rep.Unreadable)
	}
	fmt.Fprintf(tw, "users\t%d\n", rep.Users)
	for _, t := range []struct {
		label string
		t     *time.Time
	}{{"oldest created", rep.OldestCreated}, {"newest created", rep.NewestCreated}} {
		if t.t == nil {
			fmt.Fprintf(tw, "%s\t-\n", t.label)
		} else {
			fmt.Fprintf(tw, "%s\t%s (%s)\n", t.label, t.t.Local().Format(time.RFC3339), relTime(*t.t, now))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.TopUsers) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\ntop %d users by sessions:\n", len(rep.TopUsers))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tSESSIONS\tACTIVE")
	for _, u := range rep.TopUsers {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", printable(u.UserID), u.Sessions, u.Active)
	}
	return tw.Flush()
}

// ---- formatting ----

// jsonTime is t as JSON shows it: UTC, whole seconds, so RFC 3339 without
// a fraction ("2026-01-02T15:04:05Z"). Time marshals the nanoseconds it
// has, and none are left.
func jsonTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// relTime says when t is relative to now, compactly: "just now", "5m ago",
// "3h ago", "2d ago", "in 13d".
func relTime(t, now time.Time) string {
	return relTimeIn(t, now, unitFor(t.Sub(now)))
}

// relTimes formats two times of one row (last seen, expires) in the same
// unit when both are at least one of the coarser unit: "2d ago" beside
// "in 1d", not beside "in 47h". A time shorter than that unit keeps its own
// ("5m ago" beside "in 13d"), rather than reading "0d".
func relTimes(a, b, now time.Time) (string, string) {
	da, db := a.Sub(now).Abs(), b.Sub(now).Abs()
	ua, ub := unitFor(da), unitFor(db)
	u := max(ua, ub)
	if da >= u {
		ua = u
	}
	if db >= u {
		ub = u
	}
	return relTimeIn(a, now, ua), relTimeIn(b, now, ub)
}

// unitFor is the unit relTime shows a distance d in: minutes below an hour,
// hours below two days, then days.
func unitFor(d time.Duration) time.Duration {
	switch d = d.Abs(); {
	case d < time.Hour:
		return time.Minute
	case d < 48*time.Hour:
		return time.Hour
	}
	return 24 * time.Hour
}

// relTimeIn is relTime in the given unit (time.Minute, time.Hour or 24h),
// rounded down.
func relTimeIn(t, now time.Time, unit time.Duration) string {
	d := t.Sub(now)
	future := d > 0
	d = d.Abs()
	if d < time.Minute {
		if future {
			return "in <1m"
		}
		return "just now"
	}
	suffix := map[time.Duration]string{time.Minute: "m", time.Hour: "h", 24 * time.Hour: "d"}[unit]
	s := fmt.Sprintf("%d%s", int64(d/unit), suffix)
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable replaces control and other non-printing characters with "?":
// user IDs come from the app and the store does not check them, and a table
// on a terminal must not be rewritten by escape sequences or misaligned by
// tabs and newlines.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}
