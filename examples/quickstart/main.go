// Command quickstart is a web app with sessions people can see and end: a
// sign-in form, sign-in, sign-out and the "your sessions" page.
package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"html"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/httpx"
)

var addr = flag.String("addr", "localhost:8081", "address to listen on") // the demo has 8080

//go:embed nav.html
var templates embed.FS // the views' "nav" block: a link back to this app

func main() {
	flag.Parse()
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	store, err := usersessions.Open("sessions.db", nil) // nil: 14-day sessions, 64 MiB cache
	if err != nil {
		return err
	}
	defer store.Close() // writes activity still held in memory
	m := httpx.New(store, nil)
	return serve(m.Handler(routes(m))) // wrap the whole app
}

// routes are the app: its home page, sign-in and sign-out, and the views.
func routes(m *httpx.Manager) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		sess := httpx.FromContext(r.Context()) // never nil behind m.Handler
		if sess.UserID == "" {
			page(w, `Not signed in. <a href="/login">Sign in</a>`)
			return
		}
		page(w, `Signed in as %s. <a href="/account/sessions/">Your sessions</a>
<form method="post" action="/logout"><button>Sign out</button></form>`, html.EscapeString(sess.UserID))
	})
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		page(w, `<form method="post"><label>Your name <input name="user" required></label> <button>Sign in</button></form>`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user := r.FormValue("user") // a real app checks a password here
		if user == "" {
			http.Error(w, "who are you?", http.StatusBadRequest)
			return
		}
		if err := httpx.Login(w, r, user); err != nil { // a new token, bound to user
			http.Error(w, "cannot sign in", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, httpx.NextURL(r, "/"), http.StatusSeeOther) // ?next= set by the views
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		httpx.Logout(w, r) // deletes the session, clears the cookie
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	// List, end one, end all others; LoginURL "/login" and LogoutURL "/" are the defaults.
	mux.Handle("/account/sessions/", m.SessionsHandler(&httpx.ViewOptions{Templates: templates}))
	return mux
}

// serve serves app on -addr until Ctrl-C.
func serve(app http.Handler) error {
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err // "address already in use": another -addr
	}
	log.Printf("open http://%s/login", *addr)
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-served:
		return err
	case <-ctx.Done(): // Ctrl-C, or a service manager's stop
		return srv.Shutdown(context.Background()) // lets requests finish (then run closes the store)
	}
}

// page writes an HTML page. The Content-Type makes it a page; without it
// the browser shows the markup as text.
func page(w http.ResponseWriter, body string, args ...any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html>\n<title>Quick start</title>\n"+body+"\n", args...)
}
