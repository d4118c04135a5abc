package httpx_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/httpx"
)

// A complete setup: the middleware around the whole app, a login handler,
// the user's sessions page and an admin view.
func Example() {
	store, err := usersessions.Open("sessions.db", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	geo, _ := usersessions.OpenGeo("GeoLite2-City.mmdb", nil) // optional: a nil *Geo shows no locations

	m := httpx.New(store, &httpx.Options{
		// The load balancer in front; its X-Forwarded-For is believed.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user, ok := checkPassword(r.FormValue("user"), r.FormValue("password"))
		if !ok {
			http.Error(w, "wrong user or password", http.StatusUnauthorized)
			return
		}
		if err := httpx.Login(w, r, user); err != nil { // new token, user bound
			http.Error(w, "cannot sign in", http.StatusInternalServerError)
			return
		}
		// An unticked "Remember me" box: the cookie ends with the browser.
		if err := httpx.RememberMe(w, r, r.FormValue("remember") == "on"); err != nil {
			http.Error(w, "cannot sign in", http.StatusInternalServerError)
			return
		}
		// Back to the page that sent the visitor to sign in (?next=, only
		// paths on this site), else to the sessions page.
		http.Redirect(w, r, httpx.NextURL(r, "/account/sessions/"), http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		httpx.Logout(w, r)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.Handle("/account/sessions/", m.SessionsHandler(&httpx.ViewOptions{
		LoginURL:  "/login",
		LogoutURL: "/",
		Geo:       geo,
	}))
	mux.Handle("/admin/sessions/", m.AdminHandler(&httpx.AdminOptions{
		Allow: func(r *http.Request) bool { return isAdmin(httpx.FromContext(r.Context()).UserID) },
		Geo:   geo,
	}))
	log.Fatal(http.ListenAndServe(":8080", m.Handler(mux)))
}

func checkPassword(user, password string) (string, bool) { return user, password != "" }
func isAdmin(user string) bool                           { return user == "root" }

// FromContext gives every handler its session; values are saved, and the
// cookie set, only when something changed.
func ExampleFromContext() {
	dir, _ := os.MkdirTemp("", "httpx-example")
	defer os.RemoveAll(dir)
	store, err := usersessions.Open(filepath.Join(dir, "sessions.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	m := httpx.New(store, nil)

	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := httpx.FromContext(r.Context())
		n, _ := sess.Get("visits")
		visits, _ := n.(int64)
		if r.Method == http.MethodPost {
			visits++
			sess.Set("visits", visits)
		}
		fmt.Fprintf(w, "visits=%d", visits)
	}))

	var cookie *http.Cookie
	for _, method := range []string{"GET", "POST", "POST", "GET"} {
		r := httptest.NewRequest(method, "/", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body, _ := io.ReadAll(w.Body)
		set := len(w.Result().Cookies()) > 0
		if set {
			cookie = w.Result().Cookies()[0]
		}
		fmt.Printf("%s %s cookie-set=%v\n", method, body, set)
	}
	// Output:
	// GET visits=0 cookie-set=false
	// POST visits=1 cookie-set=true
	// POST visits=2 cookie-set=false
	// GET visits=2 cookie-set=false
}

func ExampleClientIP() {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}

	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:41000" // the proxy
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.7")
	fmt.Println(httpx.ClientIP(r, trusted)) // the right-most untrusted hop

	r.Header.Del("X-Forwarded-For")
	r.Header.Set("Forwarded", `for="[2001:db8::1]:4711";proto=https`)
	fmt.Println(httpx.ClientIP(r, trusted))

	r.RemoteAddr = "198.51.100.9:5000" // not a proxy: headers are ignored
	fmt.Println(httpx.ClientIP(r, trusted))
	// Output:
	// 203.0.113.7
	// 2001:db8::1
	// 198.51.100.9
}

func ExampleTimeSince() {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	fmt.Println(httpx.TimeSince(now.Add(-5*time.Minute), now))
	fmt.Println(httpx.TimeSince(now.Add(-50*time.Hour), now))
	// Output:
	// 5 minutes ago
	// 2 days ago
}

// NextURL returns the page that sent the visitor to sign in, when it is a
// path on this site.
func ExampleNextURL() {
	for _, target := range []string{
		"/login?next=%2Faccount%2Fsessions%2F",
		"/login?next=%2F%2Fevil.example%2F", // scheme-relative: another site
		"/login?next=https%3A%2F%2Fevil.example%2F",
		"/login",
	} {
		r := httptest.NewRequest("POST", target, nil)
		fmt.Println(httpx.NextURL(r, "/home"))
	}
	// Output:
	// /account/sessions/
	// /home
	// /home
	// /home
}

// Save lets a handler see a failed save and do something about it, here a
// value whose type was never registered with usersessions.RegisterType.
func ExampleSave() {
	type cart struct{ Items []string } // not registered
	http.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		sess := httpx.FromContext(r.Context())
		sess.Set("cart", cart{Items: []string{"apples"}})
		if err := httpx.Save(r); errors.Is(err, usersessions.ErrUnsupportedType) {
			// err names the key and the type; keep the rest of the session.
			sess.Delete("cart")
			http.Error(w, "could not keep your cart", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "added")
	})
}
