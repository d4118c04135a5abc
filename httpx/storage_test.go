package httpx

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// A request that loaded the session before another request signed in must
// not undo the sign-in when it saves (issue 11, item 8).
func TestRequestCannotUndoConcurrentLogin(t *testing.T) {
	e := newEnv(t, nil, nil)
	anon, err := e.store.Create(t.Context(), "", usersessions.Client{})
	if err != nil {
		t.Fatal(err)
	}
	var signedIn string
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		// Meanwhile another request of the same browser signs in.
		rotated, err := e.store.RotateUser(context.WithoutCancel(r.Context()), anon.Token, "alice")
		if err != nil {
			t.Error(err)
			return
		}
		signedIn = rotated.Token
		s.Set("theme", "dark") // this request's change, for the old identity
		io.WriteString(w, "ok")
	}))
	resp := serve(t, h, "session", call{method: "GET", target: "/", token: anon.Token})
	if resp.StatusCode != http.StatusOK || readBody(t, resp) != "ok" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if c := sessionCookie(t, resp, "session"); c != nil {
		t.Fatalf("the stale request touched the cookie: %v", c)
	}
	got, err := e.store.Load(t.Context(), signedIn)
	if err != nil || got.UserID != "alice" {
		t.Fatalf("after the stale request: %+v, %v; want alice signed in", got, err)
	}
}

// unavailableBackend is storage that cannot be reached.
type unavailableBackend struct{ usersessions.Backend }

func (unavailableBackend) Open(context.Context, time.Duration, *slog.Logger) (time.Duration, error) {
	return 0, nil
}
func (unavailableBackend) Get(context.Context, backend.ID, *backend.Record, bool) error {
	return fmt.Errorf("dial: %w", usersessions.ErrUnavailable)
}
func (unavailableBackend) Touch(context.Context, []backend.Activity) error { return nil }
func (unavailableBackend) Close() error                                    { return nil }

// Unreachable storage answers 503 and keeps the cookie: the person is not
// signed out because the database is down.
func TestUnavailableStorageAnswers503(t *testing.T) {
	store, err := usersessions.NewStore(unavailableBackend{}, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := New(store, &Options{Logger: quietLogger()})
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	tok := "AaIq472IRqdZDawOR0U0QgAaIq472IRqdZDawOR0U0QgAaIq472IRqdZDawOR0U0Q"[:usersessions.TokenLength]
	resp := serve(t, h, m.CookieName(), call{method: "GET", target: "/", token: tok})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if c := sessionCookie(t, resp, m.CookieName()); c != nil {
		t.Fatalf("the cookie was touched while storage was down: %v", c)
	}
}
