package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A -db URL goes to the PostgreSQL backend, which this build lacks: every
// command says so plainly, never shows the password, and touches no file
// (issue 12).
func TestDatabaseURL(t *testing.T) {
	const dsn = "postgres://app:s3cret@db.example:5432/sessions?sslmode=disable"
	dir := t.TempDir()
	t.Chdir(dir) // a URL taken for a relative path would create files here
	for _, args := range [][]string{
		{"ls"}, {"ls", "-json"}, {"revoke", "-user", "alice"}, {"stats"}, {"clear-expired"},
		{"clear-expired", "-skip-locked"}, {"check"},
	} {
		for _, db := range []string{dsn, strings.Replace(dsn, "postgres:", "PostgreSQL:", 1)} {
			stdout, stderr, code := runCmd(t, append(args, "-db", db)...)
			if code != exitError || !strings.Contains(stderr, "PostgreSQL support: not built in") || stdout != "" {
				t.Errorf("%v -db %s: status %d, stdout %q, stderr %q", args, db, code, stdout, stderr)
			}
			if strings.Contains(stderr, "s3cret") {
				t.Errorf("%v: the password is shown: %q", args, stderr)
			}
		}
	}
	stdout, stderr, code := runCmd(t, "compact", "-db", dsn)
	if code != exitError || !strings.Contains(stderr, "is a PostgreSQL server") || !strings.Contains(stderr, "VACUUM") ||
		strings.Contains(stderr, "s3cret") || stdout != "" {
		t.Errorf("compact of a URL: status %d, stderr %q", code, stderr)
	}
	out := filepath.Join(dir, "b.db")
	_, stderr, code = runCmd(t, "backup", "-db", dsn, "-o", out)
	if code != exitError || !strings.Contains(stderr, "is a PostgreSQL server: back it up with pg_dump") || strings.Contains(stderr, "s3cret") {
		t.Errorf("backup of a URL: status %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCmd(t, "demo", "-db", dsn, "-addr", "127.0.0.1:0")
	if code != exitError || !strings.Contains(stderr, "PostgreSQL support: not built in") || strings.Contains(stderr, "s3cret") {
		t.Errorf("demo on a URL: status %d, stderr %q", code, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("files created for a URL: %v", entries)
	}
}

func TestIsDatabaseURL(t *testing.T) {
	for db, want := range map[string]bool{
		"postgres://h/db": true, "postgresql://u@h/db": true, "POSTGRES://h": true,
		"sessions.db": false, "/var/lib/app/postgres.db": false, "file://x": false, "postgres:/x": false,
		"./postgres://x": false,
	} {
		if got := isDatabaseURL(db); got != want {
			t.Errorf("isDatabaseURL(%q) = %v", db, got)
		}
	}
	if got := redactDB("postgres://app:s3cret@h/db"); strings.Contains(got, "s3cret") || !strings.Contains(got, "app:") {
		t.Errorf("redactDB: %q", got)
	}
	if got := redactDB("postgres://app:s3cret@h/db\x7f%zz"); strings.Contains(got, "s3cret") {
		t.Errorf("redactDB of a bad URL: %q", got)
	}
	if _, err := openStore("postgresql://h/db", nil); !errors.Is(err, errNoPostgres) {
		t.Errorf("openStore of a URL: %v", err)
	}
}
