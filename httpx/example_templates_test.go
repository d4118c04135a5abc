package httpx_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing/fstest"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/httpx"
)

// ViewOptions.Templates replaces the embedded pages: every *.html file in it
// is parsed over them. Here sessions.html becomes a plain list, and the
// data is a *httpx.SessionsPage. An fs.FS from os.DirFS or embed.FS works
// the same; a file that defines only "nav", "head" or "style" replaces just
// that block of every page.
func ExampleViewOptions_templates() {
	dir, _ := os.MkdirTemp("", "httpx-templates")
	defer os.RemoveAll(dir)
	store, err := usersessions.Open(filepath.Join(dir, "sessions.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	m := httpx.New(store, nil)

	pages := fstest.MapFS{"sessions.html": {Data: []byte(
		`<h1>{{.UserID}}'s sessions</h1>
<ul>
{{- range .Sessions}}
<li>{{.Device}} · {{.IP}}{{if .Current}} (this one){{end}}</li>
{{- end}}
</ul>
`)}}
	views := m.SessionsHandler(&httpx.ViewOptions{Templates: pages})

	const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0"
	sess, err := store.Create(context.Background(), "alice", usersessions.Client{
		IP: netip.MustParseAddr("203.0.113.7"), UserAgent: firefox,
	})
	if err != nil {
		log.Fatal(err)
	}
	// The request comes from the same browser (the views show the client of
	// the latest request).
	r := httptest.NewRequest("GET", "/account/sessions/", nil)
	r.RemoteAddr, r.Header["User-Agent"] = "203.0.113.7:50000", []string{firefox}
	r.AddCookie(&http.Cookie{Name: m.CookieName(), Value: sess.Token})
	w := httptest.NewRecorder()
	views.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Body)
	fmt.Print(string(body))
	// Output:
	// <h1>alice's sessions</h1>
	// <ul>
	// <li>Firefox on Linux · 203.0.113.7 (this one)</li>
	// </ul>
}
