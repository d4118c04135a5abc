package httpx_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/httpx"
)

// Example_flow signs alice in on a laptop and on a phone, lists her sessions
// through the JSON view, ends the phone's session from the laptop, and shows
// that the phone is signed out. The README's quick start, a program with a
// sign-in form, is examples/quickstart; its tests run it in a browser.
func Example_flow() {
	dir, _ := os.MkdirTemp("", "httpx-flow")
	defer os.RemoveAll(dir)
	store, err := usersessions.Open(filepath.Join(dir, "sessions.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	m := httpx.New(store, nil)

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := httpx.Login(w, r, r.FormValue("user")); err != nil {
			http.Error(w, "cannot sign in", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/account/sessions/", http.StatusSeeOther)
	})
	mux.Handle("/account/sessions/", m.SessionsHandler(nil))
	app := m.Handler(mux)

	// do sends one request from a browser, identified by its user agent
	// and address, with its cookie.
	do := func(method, target, body, ua, ip string, cookie *http.Cookie) *http.Response {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		r.RemoteAddr = ip + ":50000"
		r.Header.Set("User-Agent", ua)
		if body != "" {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		app.ServeHTTP(w, r)
		return w.Result()
	}
	const (
		laptopUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
		phoneUA  = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
	)

	// Alice signs in twice; each browser keeps the cookie it was given.
	laptop := do("POST", "/login", "user=alice", laptopUA, "203.0.113.7", nil).Cookies()[0]
	phone := do("POST", "/login", "user=alice", phoneUA, "198.51.100.20", nil).Cookies()[0]

	// The laptop lists her sessions in JSON.
	var list struct{ Sessions []httpx.SessionInfo }
	resp := do("GET", "/account/sessions/?format=json", "", laptopUA, "203.0.113.7", laptop)
	json.NewDecoder(resp.Body).Decode(&list)
	var lines []string
	var other string
	for _, s := range list.Sessions {
		lines = append(lines, fmt.Sprintf("%s, %s, current=%v", s.Device, s.IP, s.Current))
		if !s.Current {
			other = s.ID
		}
	}
	slices.Sort(lines)
	fmt.Println(strings.Join(lines, "\n"))

	// It ends the other one: the phone's.
	resp = do("POST", "/account/sessions/"+other+"/end?format=json", "", laptopUA, "203.0.113.7", laptop)
	var ended struct{ Ended int }
	json.NewDecoder(resp.Body).Decode(&ended)
	fmt.Println("ended:", ended.Ended)

	// The phone's cookie no longer signs anyone in.
	resp = do("GET", "/account/sessions/?format=json", "", phoneUA, "198.51.100.20", phone)
	fmt.Println("phone:", resp.StatusCode)
	list.Sessions = nil
	resp = do("GET", "/account/sessions/?format=json", "", laptopUA, "203.0.113.7", laptop)
	json.NewDecoder(resp.Body).Decode(&list)
	fmt.Println("laptop:", resp.StatusCode, len(list.Sessions), "session")
	// Output:
	// Chrome on Windows, 203.0.113.7, current=true
	// Safari on iPhone, 198.51.100.20, current=false
	// ended: 1
	// phone: 401
	// laptop: 200 1 session
}
