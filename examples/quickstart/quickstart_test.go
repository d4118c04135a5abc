package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

// get fetches path with c and returns the response and its body.
func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// Without a browser: every page of the program is HTML, signing in works,
// the sessions page carries the nav block, and Ctrl-C stops the program
// cleanly, closing the store.
func TestQuickStartServesPages(t *testing.T) {
	p := startProgram(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}

	for _, path := range []string{"/", "/login"} {
		resp, body := get(t, c, p.base+path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || !strings.HasPrefix(body, "<!doctype html>") {
			t.Errorf("GET %s: %s, Content-Type %q, body %q", path, resp.Status, resp.Header.Get("Content-Type"), body)
		}
	}
	resp, err := c.PostForm(p.base+"/login", url.Values{"user": {"carol"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path != "/" || !strings.Contains(string(body), "Signed in as carol") || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("after signing in: %s at %s, %q", resp.Status, resp.Request.URL, body)
	}
	resp, page := get(t, c, p.base+"/account/sessions/")
	if resp.StatusCode != http.StatusOK || strings.Count(page, "data-session=") != 1 || !strings.Contains(page, `<nav><a href="/">← Back to the app</a></nav>`) {
		t.Errorf("sessions page: %s\n%s", resp.Status, page)
	}

	if err := p.stop(t); err != nil {
		t.Fatalf("after Ctrl-C: %v, want exit status 0", err)
	}
	// The store is closed (another process may open the file at once)
	// and the session is in it.
	store, err := usersessions.Open(filepath.Join(p.dir, "sessions.db"), &usersessions.Options{OpenTimeout: time.Millisecond, CleanupInterval: -1})
	if err != nil {
		t.Fatalf("the program left sessions.db: %v", err)
	}
	defer store.Close()
	if list, err := store.ListByUser(context.Background(), "carol"); err != nil || len(list) != 1 {
		t.Errorf("carol's sessions after the program stopped: %v, %v", list, err)
	}
}

// A taken address is a clear error and exit status 1, before any
// "open http://..." line.
func TestQuickStartPortTaken(t *testing.T) {
	if binary == "" {
		t.Skip("no go command to build the program with")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(binary, "-addr", ln.Addr().String())
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "address already in use") || strings.Contains(stderr.String(), "open http") {
		t.Errorf("on a taken port: %v, stderr %q; want exit status 1 and the error alone", err, stderr.String())
	}
}
