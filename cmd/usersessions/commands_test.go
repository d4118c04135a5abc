package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions/internal/geotest"
)

// testMMDB returns a City database placing 192.0.2.0/24 in Berlin.
func testMMDB(t *testing.T) []byte {
	return geotest.Build(t, "GeoIP2-City", map[string]geotest.Entry{
		"192.0.2.0/24": {City: "Berlin", Country: "Germany", CountryCode: "DE"}})
}

func TestList(t *testing.T) {
	sd := seedDB(t)
	mmdb := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	if err := os.WriteFile(mmdb, testMMDB(t), 0o644); err != nil {
		t.Fatal(err)
	}

	stdout, stderr, code := runCmd(t, "ls", "-db", sd.path, "-geoip", mmdb)
	if code != exitOK {
		t.Fatalf("ls: status %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "ID USER DEVICE LOCATION IP LAST SEEN EXPIRES" {
		t.Errorf("header %q", lines[0])
	}
	// 5 active sessions, a blank line, the count.
	if len(lines) != 8 || lines[7] != "5 sessions" {
		t.Errorf("ls printed:\n%s", stdout)
	}
	for _, want := range []string{sd.alice[0], "Chrome on Windows", "Berlin, Germany", "192.0.2.10", "Safari on iPhone", "(anonymous)", "in 13d"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("ls output lacks %q:\n%s", want, stdout)
		}
	}

	stdout, _, _ = runCmd(t, "ls", "-db", sd.path, "-expired")
	if !strings.Contains(stdout, "3 sessions") || strings.Contains(stdout, "alice") || !strings.Contains(stdout, "2d ago     1d ago") {
		t.Errorf("ls -expired:\n%s", stdout)
	}
	stdout, _, _ = runCmd(t, "ls", "-db", sd.path, "-all", "-user", "bob")
	if !strings.Contains(stdout, "3 sessions") || strings.Contains(stdout, "alice") {
		t.Errorf("ls -all -user bob:\n%s", stdout)
	}
	stdout, _, code = runCmd(t, "ls", "-db", sd.path, "-user", "nobody")
	if code != exitOK || stdout != "no active sessions\n" {
		t.Errorf("ls -user nobody: status %d, %q", code, stdout)
	}

	stdout, _, code = runCmd(t, "ls", "-db", sd.path, "-json", "-user", "alice", "-geoip", mmdb)
	if code != exitOK {
		t.Fatalf("ls -json: status %d", code)
	}
	var got []sessionLine
	for line := range strings.Lines(stdout) {
		var s sessionLine
		var raw map[string]any
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		for _, field := range []string{"id", "user_id", "ip", "user_agent", "device", "location", "created_at", "last_seen", "expires_at"} {
			if _, ok := raw[field]; !ok {
				t.Errorf("line %q lacks %q", line, field)
			}
		}
		json.Unmarshal([]byte(line), &s)
		got = append(got, s)
	}
	if len(got) != 3 {
		t.Fatalf("ls -json -user alice: %d lines", len(got))
	}
	for _, s := range got {
		if s.UserID != "alice" || !s.Active || s.ExpiresAt.Sub(s.CreatedAt) != 14*24*time.Hour {
			t.Errorf("session %+v", s)
		}
		if s.ID == sd.alice[0] && (s.Location != "Berlin, Germany" || s.IP != "192.0.2.10" || s.Device != "Chrome on Windows") {
			t.Errorf("first session of alice: %+v", s)
		}
	}

	// JSON times are whole seconds.
	for _, field := range []string{"created_at", "last_seen", "expires_at"} {
		if !regexp.MustCompile(`"` + field + `":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"`).MatchString(stdout) {
			t.Errorf("ls -json: %s is not RFC 3339 in whole seconds:\n%s", field, stdout)
		}
	}

	stdout, _, code = runCmd(t, "ls", "-db", sd.path, "-limit", "2")
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); code != exitOK || len(lines) != 5 || lines[4] != "2 of 5 sessions (-limit 2)" {
		t.Errorf("ls -limit 2: status %d\n%s", code, stdout)
	}
	stdout, _, code = runCmd(t, "ls", "-db", sd.path, "-limit", "2", "-json", "-all")
	if code != exitOK || strings.Count(stdout, "\n") != 2 {
		t.Errorf("ls -limit 2 -json: status %d\n%s", code, stdout)
	}

	// The table and -json list the same sessions in the same order,
	// newest activity first, with and without -limit (issue 18, item 17).
	for _, args := range [][]string{{"-all"}, {"-limit", "2"}, {"-all", "-limit", "3"}, {"-user", "alice"}} {
		table, _, _ := runCmd(t, append([]string{"ls", "-db", sd.path}, args...)...)
		lines, _, _ := runCmd(t, append([]string{"ls", "-db", sd.path, "-json"}, args...)...)
		var tableIDs, jsonIDs []string
		for i, line := range strings.Split(table, "\n") {
			if i == 0 || line == "" {
				continue // the header; the blank line before the count
			}
			if f := strings.Fields(line); len(f) > 0 && len(f[0]) == 22 {
				tableIDs = append(tableIDs, f[0])
			}
		}
		for line := range strings.Lines(lines) {
			var s sessionLine
			if err := json.Unmarshal([]byte(line), &s); err != nil {
				t.Fatalf("ls -json %q: %v", args, err)
			}
			jsonIDs = append(jsonIDs, s.ID)
		}
		if len(tableIDs) == 0 || strings.Join(tableIDs, " ") != strings.Join(jsonIDs, " ") {
			t.Errorf("ls %q: the table lists %v, -json lists %v", args, tableIDs, jsonIDs)
		}
	}

	_, stderr, code = runCmd(t, "ls", "-db", sd.path, "-geoip", filepath.Join(t.TempDir(), "none.mmdb"))
	if code != exitError || !strings.Contains(stderr, "none.mmdb does not exist") {
		t.Errorf("ls with a missing -geoip: status %d, stderr %q", code, stderr)
	}
}

func TestRevoke(t *testing.T) {
	sd := seedDB(t)
	count := func(args ...string) int {
		t.Helper()
		stdout, _, _ := runCmd(t, append([]string{"ls", "-json", "-db", sd.path}, args...)...)
		return strings.Count(stdout, "\n")
	}

	stdout, stderr, code := runCmd(t, "revoke", "-db", sd.path, "-id", sd.bob)
	if code != exitOK || stdout != "revoked 1 session\n" {
		t.Errorf("revoke -id: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	_, stderr, code = runCmd(t, "revoke", "-db", sd.path, "-id", sd.bob)
	if code != exitError || !strings.Contains(stderr, `no session with ID "`+sd.bob+`"`) {
		t.Errorf("revoke of a gone ID: status %d, stderr %q", code, stderr)
	}

	// A -keep that is not alice's revokes nothing.
	_, stderr, code = runCmd(t, "revoke", "-db", sd.path, "-user", "alice", "-keep", "AAAAAAAAAAAAAAAAAAAAAA")
	if code != exitError || !strings.Contains(stderr, "nothing revoked") || count("-user", "alice") != 3 {
		t.Errorf("revoke with a bad -keep: status %d, stderr %q", code, stderr)
	}
	stdout, _, code = runCmd(t, "revoke", "-db", sd.path, "-user", "alice", "-keep", sd.alice[1])
	if code != exitOK || stdout != "revoked 2 sessions\n" {
		t.Errorf("revoke -user -keep: status %d, stdout %q", code, stdout)
	}
	if stdout, _, _ := runCmd(t, "ls", "-json", "-db", sd.path, "-user", "alice"); !strings.Contains(stdout, sd.alice[1]) || count("-user", "alice") != 1 {
		t.Errorf("after revoke -keep: %q", stdout)
	}
	// Expired sessions go too.
	stdout, _, code = runCmd(t, "revoke", "-db", sd.path, "-user", "bob")
	if code != exitOK || stdout != "revoked 2 sessions\n" || count("-all", "-user", "bob") != 0 {
		t.Errorf("revoke -user bob: status %d, stdout %q", code, stdout)
	}
	// Nothing matched: said, and status 1 as for an unknown -id.
	stdout, stderr, code = runCmd(t, "revoke", "-db", sd.path, "-user", "nobody")
	if code != exitError || stdout != "" || !strings.Contains(stderr, `no sessions of user "nobody" matched; nothing revoked`) {
		t.Errorf("revoke -user nobody: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = runCmd(t, "revoke", "-db", sd.path, "-user", "alice", "-keep", sd.alice[1])
	if code != exitError || stdout != "" || !strings.Contains(stderr, "no sessions besides") {
		t.Errorf("revoke -user alice -keep (her only session): status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestStats(t *testing.T) {
	sd := seedDB(t)
	stdout, stderr, code := runCmd(t, "stats", "-db", sd.path)
	if code != exitOK {
		t.Fatalf("stats: status %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"sessions        8", "active        5", "expired       3", "anonymous     2", "users           2", "KiB", "oldest created", "(2d ago)", "alice  3         3", "bob    3         1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stats lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, code = runCmd(t, "stats", "-db", sd.path, "-json")
	if !regexp.MustCompile(`"oldest_created": "[^".]+Z"`).MatchString(stdout) {
		t.Errorf("stats -json: times with fractions or not in UTC:\n%s", stdout)
	}
	var rep statsReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != exitOK {
		t.Fatalf("stats -json: status %d, %v: %q", code, err, stdout)
	}
	if rep.Total != 8 || rep.Active != 5 || rep.Expired != 3 || rep.Anonymous != 2 || rep.Users != 2 || rep.FileSize == 0 ||
		len(rep.TopUsers) != 2 || rep.TopUsers[0] != (userCount{"alice", 3, 3}) || rep.OldestCreated == nil ||
		rep.NewestCreated.Sub(*rep.OldestCreated) < 47*time.Hour {
		t.Errorf("stats -json: %+v", rep)
	}
}

func TestClearExpired(t *testing.T) {
	sd := seedDB(t)
	stdout, stderr, code := runCmd(t, "clear-expired", "-db", sd.path)
	if code != exitOK || !strings.HasPrefix(stdout, "removed 3 expired sessions in ") || !strings.HasSuffix(stdout, ", 5 left\n") || stderr != "" {
		t.Errorf("clear-expired: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, _, code = runCmd(t, "clear-expired", "-db", sd.path)
	if code != exitOK || !strings.HasPrefix(stdout, "removed 0 expired sessions") {
		t.Errorf("second clear-expired: status %d, stdout %q", code, stdout)
	}
	if stdout, _, _ := runCmd(t, "ls", "-db", sd.path, "-expired"); stdout != "no expired sessions\n" {
		t.Errorf("ls -expired after clear-expired: %q", stdout)
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	p := startProgress(&buf, "removing", 200, false, clock)
	now = now.Add(time.Second)
	p.Set(100)
	if out := buf.String(); !strings.Contains(out, "\rremoving [████████████░░░░░░░░░░░░]  50%  100/200  1s") {
		t.Errorf("bar drawn as %q", out)
	}
	p.Set(150) // too soon after the last draw
	if strings.Contains(buf.String(), "150/200") {
		t.Error("redrawn within progressInterval")
	}
	buf.Reset()
	p.Done()
	if out := buf.String(); strings.Trim(out, "\r ") != "" || !strings.HasSuffix(out, "\r") {
		t.Errorf("Done wrote %q", out)
	}

	buf.Reset()
	p = startProgress(&buf, "downloading", 0, true, clock)
	now = now.Add(time.Second)
	p.Set(3 << 20)
	if !strings.Contains(buf.String(), "3.0 MiB") {
		t.Errorf("spinner drawn as %q", buf.String())
	}
	var nilBar *progressBar // what newProgress returns off a terminal
	nilBar.Set(1)
	nilBar.Done()
	if newProgress(&buf, "x", 1, false) != nil {
		t.Error("a bar on a buffer")
	}
	for n, want := range map[int64]string{512: "512 B", 1536: "1.5 KiB", 61 << 20: "61.0 MiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// Within a row, last seen and expiry share a unit (issue 15).
func TestRelTimes(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		last, dl     time.Duration // from now
		wantA, wantB string
	}{
		{-49 * time.Hour, 47 * time.Hour, "2d ago", "in 1d"},
		{-5 * time.Minute, 13*24*time.Hour + 23*time.Hour, "5m ago", "in 13d"},
		{-3 * time.Hour, 30 * time.Minute, "3h ago", "in 30m"},
		{-90 * time.Minute, 47 * time.Hour, "1h ago", "in 47h"},
		{-20 * time.Second, 10 * time.Second, "just now", "in <1m"},
		{-50 * time.Hour, -24 * time.Hour, "2d ago", "1d ago"},
	} {
		a, b := relTimes(now.Add(tc.last), now.Add(tc.dl), now)
		if a != tc.wantA || b != tc.wantB {
			t.Errorf("relTimes(%v, %v) = %q, %q; want %q, %q", tc.last, tc.dl, a, b, tc.wantA, tc.wantB)
		}
	}
}
