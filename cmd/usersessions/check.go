package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/usersessions/usersessions"
)

// ---- check ----

func cmdCheck(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("check", "check [-db PATH]", `
Checks a session database without changing it: first bbolt's own
consistency check of every page, run in a child process so that damage that
makes bbolt crash is reported rather than crashing this command; then the
store's check that records and indexes agree (Store.Check). Prints "ok" and
exits 0, or names the problems and exits 1.`, stderr)
	db := addDBFlags(fs)
	hideFlags(fs, "idle-timeout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if db.idle.set {
		return usagef(fs, "-idle-timeout does not apply to check: it checks the file against the app's stored setting")
	}
	store, err := openExisting(db, stderr)
	if err != nil {
		return err
	}
	defer closeStore(store, &err)
	ctx, stop := signalContext()
	defer stop()

	name := redactDB(db.path)
	n, err := store.Count(ctx)
	if err != nil {
		return err
	}
	if err := store.Check(ctx); err != nil {
		if !errors.Is(err, usersessions.ErrCorrupt) {
			return err
		}
		problems := strings.Split(err.Error(), "\n")
		for _, p := range problems {
			fmt.Fprintf(stdout, "%s: %s\n", name, strings.TrimPrefix(p, "usersessions: corrupt data: "))
		}
		if isDatabaseURL(db.path) {
			return &openError{fmt.Errorf("%s: %w", name, err),
				fmt.Sprintf("%s: %d %s between records and indexes", name, len(problems), plural(len(problems), "problem"))}
		}
		return &openError{fmt.Errorf("%s: %w", db.path, err),
			fmt.Sprintf("%s is damaged: %d %s between records and indexes (bbolt's pages are sound)",
				db.path, len(problems), plural(len(problems), "problem"))}
	}
	if db.viaSocket {
		fmt.Fprintf(stdout, "%s: ok: %d %s, records and indexes agree (checked by the running app through its control socket; "+
			"bbolt's page check needs the file free)\n", db.path, n, plural(n, "session"))
		return nil
	}
	if isDatabaseURL(db.path) {
		fmt.Fprintf(stdout, "%s: ok: %d %s, records and indexes agree\n", name, n, plural(n, "session"))
		return nil
	}
	size := int64(0)
	if fi, err := os.Stat(db.path); err == nil {
		size = fi.Size()
	}
	fmt.Fprintf(stdout, "%s: ok: bbolt pages consistent, %d %s, records and indexes agree; %s, %s free\n",
		db.path, n, plural(n, "session"), humanBytes(size), humanBytes(int64(db.probe.FreePages)*int64(db.probe.PageSize)))
	return nil
}
