// Command usersessions runs the demo web app of the usersessions package and
// the jobs an operator needs on a session database: clearing expired
// sessions, listing and revoking sessions, statistics, checking, compacting
// and backing up the file, and downloading a GeoIP database.
//
//	usersessions demo [-db PATH] [-addr HOST:PORT] [-geoip PATH] [-geoip-lang LANGS] [-trusted-proxies CIDR,...]
//	usersessions clear-expired [-db PATH] [-skip-locked] [-dry-run] [-idle-timeout D -force]
//	usersessions ls [-db PATH] [-user U] [-expired | -all] [-json] [-limit N] [-geoip PATH] [-idle-timeout D]
//	usersessions revoke [-db PATH] (-user U [-keep ID] | -id ID)
//	usersessions stats [-db PATH] [-json] [-idle-timeout D]
//	usersessions check [-db PATH]
//	usersessions compact [-db PATH]
//	usersessions backup [-db PATH] -o FILE [-force]
//	usersessions geoip download [-key KEY] [-edition NAME] [-dir DIR]
//	usersessions help [COMMAND]
//	usersessions version
//
// Every command that reads the session database takes -db PATH; the default
// is the demo's database, demo.db in the usersessions folder of the user's
// cache directory. -db also takes the postgres:// or redis:// URL of a
// server shared by several app instances (packages pgstore, redisstore):
// ls, revoke, stats, check and clear-expired work on it while the apps run. Operator commands never
// store settings in the file: an -idle-timeout is applied in memory only. Before opening a file they check
// it in a child process, so a damaged file is reported, not a crash.
//
// Exit status: 0 success; 1 runtime error (a damaged, locked or missing
// database, nothing matched by revoke); 2 bad usage, and only that.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == probeCommand {
		os.Exit(runProbe(os.Args[2:], os.Stdout))
	}
	os.Exit(runSafely(os.Args[1:], os.Stdout, os.Stderr))
}

// runSafely is run, with a panic (bbolt panics on some damaged pages, and
// faults on the mapped file become panics here) reported as an error with
// status 1: the runtime's own status for a crash is 2, the status of bad
// usage.
func runSafely(args []string, stdout, stderr io.Writer) (code int) {
	debug.SetPanicOnFault(true)
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "usersessions: internal error: %v\n"+
				"(if the session database is damaged, \"usersessions check -db FILE\" says so)\n", p)
			code = exitError
		}
	}()
	return run(args, stdout, stderr)
}

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // bad command line
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// commands are listed in usage in this order.
var commands = []command{
	{"demo", "run a small web app showing the session views", cmdDemo},
	{"clear-expired", "remove expired sessions (safe to run from cron)", cmdClearExpired},
	{"ls", "list sessions as a table or JSON lines", cmdList},
	{"revoke", "end sessions of a user, or one session by ID", cmdRevoke},
	{"stats", "counts, file size, oldest/newest, top users", cmdStats},
	{"check", "check a database for damage, without changing it", cmdCheck},
	{"compact", "give a database's free space back to the file system", cmdCompact},
	{"backup", "write a consistent copy of a database", cmdBackup},
	{"geoip", "download a GeoIP database (geoip download)", cmdGeoIP},
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usersessions: sessions that users can see and control.

Usage:
  usersessions <command> [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Start here:
  go run ./cmd/usersessions demo

Every command that reads the session database takes -db PATH
(default %s).
Run "usersessions help <command>" for a command's flags,
"usersessions version" for the version.
Exit status: 0 success; 1 error (a damaged or locked database, nothing
matched by revoke, ...); 2 bad usage only.
`, defaultDBPath())
}

// run is the whole program: it parses args (without the program name),
// writes to stdout and stderr, and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && name == "help" {
			return helpFor(args[1], stdout, stderr)
		}
		usage(stdout)
		return exitOK
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	for _, c := range commands {
		if c.name == name {
			return exitCode(c.run(args[1:], stdout, stderr), stderr)
		}
	}
	return exitCode(&usageError{usage: func() { usage(stderr) }, msg: fmt.Sprintf("unknown command %q", name)}, stderr)
}

// helpFor prints the usage of the command name on stdout: "help ls" is
// "ls -h".
func helpFor(name string, stdout, stderr io.Writer) int {
	for _, c := range commands {
		if c.name == name {
			// The flag package prints usage on the FlagSet's output,
			// which is stderr: make it stdout for this call.
			return exitCode(c.run([]string{"-h"}, stdout, stdout), stderr)
		}
	}
	return exitCode(&usageError{usage: func() { usage(stderr) }, msg: fmt.Sprintf("unknown command %q", name)}, stderr)
}

// versionString is "usersessions VERSION" from the build information: the
// module version, or the VCS revision of a build from a checkout.
func versionString() string {
	v, rev, modified, goVersion := "(devel)", "", false, runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	out := "usersessions " + v
	if rev != "" && v == "(devel)" {
		out += " " + rev[:min(len(rev), 12)]
		if modified {
			out += "+modified"
		}
	}
	return out + " " + goVersion
}

// usageError is a bad command line. exitCode prints the usage, then the
// message: the problem comes last, where the eye lands after the command,
// not above a screenful of flags. The exit status is 2.
type usageError struct {
	usage func() // prints the usage of the command; nil prints none
	msg   string
}

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError for fs.
func usagef(fs *flag.FlagSet, format string, args ...any) error {
	return &usageError{usage: fs.Usage, msg: fmt.Sprintf(format, args...)}
}

// errHelp reports that -h printed the usage: exit 0.
var errHelp = errors.New("help requested")

// exitCode reports err on stderr and turns it into an exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errHelp) {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		if ue.usage != nil {
			ue.usage()
		}
		if ue.msg != "" {
			fmt.Fprintf(stderr, "\nusersessions: %s\n", ue.msg)
		}
		return exitUsage
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "usersessions: ") {
		msg = "usersessions: " + msg
	}
	fmt.Fprintln(stderr, msg)
	return exitError
}

// newFlagSet returns a FlagSet for "usersessions <name>" that reports to
// stderr and prints synopsis, then the flags, as its usage.
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("usersessions "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage:\n  usersessions %s\n\n", synopsis)
		if about != "" {
			fmt.Fprintf(stderr, "%s\n\n", strings.TrimSpace(about))
		}
		fmt.Fprintln(stderr, "Flags:")
		printDefaults(fs)
	}
	return fs
}

// hiddenValue marks a flag that works but is left out of the usage (flags
// for tests and unusual setups).
type hiddenValue struct{ flag.Value }

// hideFlags leaves the named flags out of fs's usage.
func hideFlags(fs *flag.FlagSet, names ...string) {
	for _, name := range names {
		if f := fs.Lookup(name); f != nil {
			f.Value = hiddenValue{f.Value}
		}
	}
}

// printDefaults is fs.PrintDefaults without the hidden flags.
func printDefaults(fs *flag.FlagSet) {
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	shown.SetOutput(fs.Output())
	fs.VisitAll(func(f *flag.Flag) {
		if _, hidden := f.Value.(hiddenValue); hidden {
			return
		}
		shown.Var(f.Value, f.Name, f.Usage)
		shown.Lookup(f.Name).DefValue = f.DefValue // not a value parsed meanwhile
	})
	shown.PrintDefaults()
}

// parseFlags parses args and refuses positional arguments. The flag
// package would print its error before the usage; it is kept quiet, and
// the error becomes a usageError that exitCode prints after it.
func parseFlags(fs *flag.FlagSet, args []string) error {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return errHelp
		}
		return usagef(fs, "%v", err)
	}
	if fs.NArg() > 0 {
		return usagef(fs, "unexpected argument %q", fs.Arg(0))
	}
	return nil
}
