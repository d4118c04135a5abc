package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/control"
	"github.com/usersessions/usersessions/internal/needs"
)

// unixHTTP is an HTTP client for the socket at path.
func unixHTTP(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
}

func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// curlPath finds curl, or skips the test (fails it under CI=true).
func curlPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err != nil {
		needs.Missing(t, "no curl found: install Debian's curl package")
	}
	return p
}

// curl runs curl on the socket and returns its output; it fails t unless
// curl exits 0 (-f: an HTTP error is a failure too).
func curl(t *testing.T, socket string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(curlPath(t), append([]string{"-sSf", "--unix-socket", socket}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// The socket is plain HTTP: curl lists, ends and backs up as the README
// shows.
func TestCurl(t *testing.T) {
	curlPath(t)
	store, ctl := openControlled(t, nil)
	alice := create(t, store, "alice", usersessions.Client{UserAgent: "curl-test"})
	create(t, store, "bob", usersessions.Client{})
	bob2 := create(t, store, "bob", usersessions.Client{})
	bob3 := create(t, store, "bob", usersessions.Client{})

	var info control.Info
	if err := json.Unmarshal(curl(t, ctl.Path(), "http://x/v1/info"), &info); err != nil || info.Count != 4 || info.Path != store.Path() {
		t.Errorf("curl /v1/info: %+v, %v", info, err)
	}
	lines := strings.Split(strings.TrimSpace(string(curl(t, ctl.Path(), "http://x/v1/sessions?user=alice&state=active"))), "\n")
	var s control.Session
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &s) != nil || s.ID != alice.ID || s.UserAgent != "curl-test" {
		t.Errorf("curl /v1/sessions?user=alice: %q", lines)
	}
	if out := string(curl(t, ctl.Path(), "-X", "DELETE", "http://x/v1/users/alice/sessions")); out != `{"ended":1}`+"\n" {
		t.Errorf("curl DELETE /v1/users/alice/sessions: %q", out)
	}
	if out := string(curl(t, ctl.Path(), "-X", "DELETE", "http://x/v1/sessions/"+bob2.ID)); out != `{"ended":1}`+"\n" {
		t.Errorf("curl DELETE /v1/sessions/ID: %q", out)
	}
	if out := string(curl(t, ctl.Path(), "-X", "DELETE", "http://x/v1/users/bob/sessions?keep="+bob3.ID)); out != `{"ended":1}`+"\n" {
		t.Errorf("curl DELETE /v1/users/bob/sessions?keep=ID: %q", out)
	}
	if out := string(curl(t, ctl.Path(), "-X", "POST", "http://x/v1/clear-expired")); out != `{"removed":0}`+"\n" {
		t.Errorf("curl POST /v1/clear-expired: %q", out)
	}
	if out := string(curl(t, ctl.Path(), "http://x/v1/check")); out != `{"ok":true,"problems":[]}`+"\n" {
		t.Errorf("curl /v1/check: %q", out)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	curl(t, ctl.Path(), "-o", copyPath, "http://x/v1/backup")
	data, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	checkCopy(t, data, 1)
}

// Only the socket's owner and root may talk: another user who can reach
// the socket (its mode widened here on purpose) gets 403, backups
// included. Run as root, the test talks as nobody through curl.
func TestPeerCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("skipping: talking as another user needs root")
	}
	curl := curlPath(t)
	store, ctl := openControlled(t, nil)
	create(t, store, "alice", usersessions.Client{})
	// Let nobody reach the socket: the peer check alone must refuse it.
	if err := os.Chmod(filepath.Dir(ctl.Path()), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ctl.Path(), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/v1/info", "/v1/backup", "/v1/sessions"} {
		cmd := exec.Command(curl, "-sS", "-w", "\n%{http_code}", "--unix-socket", ctl.Path(), "http://x"+target)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		text := strings.TrimSpace(string(out))
		body, status := text, ""
		if i := strings.LastIndex(text, "\n"); i >= 0 {
			body, status = text[:i], text[i+1:]
		}
		if err != nil || status != "403" || !strings.Contains(body, `"code":"forbidden"`) || strings.Contains(body, "alice") {
			t.Errorf("%s as nobody: %v, %.300q", target, err, out)
		}
	}
	// Root (the owner here) is served.
	c := dial(t, ctl.Path())
	if n, err := c.Count(ctx); n != 1 || err != nil {
		t.Errorf("Count as root: %d, %v", n, err)
	}
}
