package httpx_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/go-chi/chi/v5"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/httpx"
)

// The views need no prefix setting: they read their mount point from the
// request. Here they sit in a sub-mux that an app mounts under /settings/
// with http.StripPrefix.
func ExampleManager_SessionsHandler_stripPrefix() {
	store, m, cleanup := exampleStore()
	defer cleanup()

	settings := http.NewServeMux() // the sub-app, which knows nothing of /settings
	settings.Handle("/sessions/", m.SessionsHandler(nil))
	app := http.NewServeMux()
	app.Handle("/settings/", http.StripPrefix("/settings", settings))

	showViews(store, m, m.Handler(app), "/settings/sessions/")
	// Output:
	// visitor: 303 /login?next=%2Fsettings%2Fsessions%2F
	// alice, list: 200
	// alice, end others: 303 ./
	// alice's sessions left: 1
}

// Under chi, Mount the views at a path without the trailing slash.
func ExampleManager_SessionsHandler_chi() {
	store, m, cleanup := exampleStore()
	defer cleanup()

	r := chi.NewRouter()
	r.Use(m.Handler) // the middleware around every route
	r.Route("/account", func(r chi.Router) {
		r.Mount("/sessions", m.SessionsHandler(nil))
	})

	showViews(store, m, r, "/account/sessions/")
	// Output:
	// visitor: 303 /login?next=%2Faccount%2Fsessions%2F
	// alice, list: 200
	// alice, end others: 303 ./
	// alice's sessions left: 1
}

// exampleStore opens a store in a temporary directory.
func exampleStore() (*usersessions.Store, *httpx.Manager, func()) {
	dir, _ := os.MkdirTemp("", "httpx-router")
	store, err := usersessions.Open(filepath.Join(dir, "sessions.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	return store, httpx.New(store, nil), func() { store.Close(); os.RemoveAll(dir) }
}

// showViews asks the views at path for the list, first without a session,
// then as alice, and ends her other sessions.
func showViews(store *usersessions.Store, m *httpx.Manager, app http.Handler, path string) {
	send := func(method, target string, cookie *http.Cookie) *http.Response {
		r := httptest.NewRequest(method, target, nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		app.ServeHTTP(w, r)
		return w.Result()
	}
	resp := send("GET", path, nil)
	fmt.Println("visitor:", resp.StatusCode, resp.Header.Get("Location"))

	ctx := context.Background()
	sess, _ := store.Create(ctx, "alice", usersessions.Client{})
	store.Create(ctx, "alice", usersessions.Client{}) // another device
	cookie := &http.Cookie{Name: m.CookieName(), Value: sess.Token}
	fmt.Println("alice, list:", send("GET", path, cookie).StatusCode)
	resp = send("POST", path+"end-others", cookie)
	fmt.Println("alice, end others:", resp.StatusCode, resp.Header.Get("Location"))
	left, _ := store.ListByUser(ctx, "alice")
	fmt.Println("alice's sessions left:", len(left))
}
