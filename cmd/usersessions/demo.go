package main

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/control"
	"github.com/usersessions/usersessions/httpx"
	"golang.org/x/text/language"
)

//go:embed templates/*.html
var templateFS embed.FS

// viewTemplates adds the demo's "nav" block to httpx's own views, so every
// page has a way back to the demo's home page.
//
//go:embed viewtemplates/*.html
var viewTemplatesFS embed.FS

func viewTemplates() fs.FS {
	sub, err := fs.Sub(viewTemplatesFS, "viewtemplates")
	if err != nil {
		panic(err) // the directory is embedded: cannot fail
	}
	return sub
}

// demoPages are the demo's own templates, once per language, each with
// the t function of its language (demoCatalog.T).
var demoPages = func() map[string]*template.Template {
	base := template.Must(template.New("").
		Funcs(template.FuncMap{"stylesheet": httpx.Stylesheet, "t": demoCatalog(nil).T}).
		ParseFS(templateFS, "templates/*.html"))
	pages := make(map[string]*template.Template, len(demoLangs))
	for _, tag := range demoLangs {
		pages[tag] = template.Must(base.Clone()).Funcs(template.FuncMap{"t": demoCatalog(demoText[tag]).T})
	}
	return pages
}()

// Demo routes.
const (
	sessionsPath = "/account/sessions/"
	adminPath    = "/admin/sessions/"
	adminUser    = "admin" // the one user the admin view lets in
)

// maxUsername is the longest user name the demo accepts, in characters.
const maxUsername = 64

// demoCSP is the Content-Security-Policy of the demo's own pages: inline
// CSS, forms to this origin, nothing else.
const demoCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// cmdDemo runs the demo web app. It is longer than most because a quarter
// of it is the command's help text and flag definitions; the rest is one
// sequence of setup steps in the order they must happen.
func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "demo [-db PATH] [-addr HOST:PORT] [-geoip PATH] [-geoip-lang LANGS] [-trusted-proxies CIDR,...] [-dbsc=false]", `
Runs a small web app: sign in under any name, see your sessions at
/account/sessions/, end them; sign in as "admin" for /admin/sessions/.
Stop it with Ctrl-C. Its pages and the views speak the views' eight
languages, chosen as the views choose: ?lang=de (the links at the foot of
each page keep it in a cookie), then the browser's languages.

Without -geoip the demo builds a small GeoIP database of six cities
(Zwolle, London, San Francisco, Tokyo, São Paulo, Berlin) with made-up
networks, and its sign-in form offers to sign in "as if from" one of them,
so sessions show a location out of the box. A real database given with
-geoip replaces it, and the form then offers no places. Places are named
in the page's language (one database per language, as httpx's
GeoByLanguage takes them).`, stderr)
	dbPath := fs.String("db", defaultDBPath(), "session database `file` (created if missing)")
	addr := fs.String("addr", "127.0.0.1:8080", "listen `address`; port 0 picks a free port")
	geoPath := fs.String("geoip", "", "GeoIP City or Country `.mmdb` file (or folder) for locations (default: a built-in demo database of six cities)")
	geoLang := fs.String("geoip-lang", "", "comma-separated `languages` to name places in, the first for other pages too; each holds the database in memory (default: every language of the views with the built-in database, en with -geoip)")
	proxies := fs.String("trusted-proxies", "", "comma-separated `CIDRs` of proxies whose X-Forwarded-For is believed")
	dbsc := fs.Bool("dbsc", true, "device-bound sessions (DBSC): Chrome binds each session to a key it keeps; it needs HTTPS, so put a TLS proxy in front")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	trusted, err := parsePrefixes(*proxies)
	if err != nil {
		return usagef(fs, "-trusted-proxies: %v", err)
	}
	langs, err := parseLangs(*geoLang)
	if err != nil {
		return usagef(fs, "-geoip-lang: %v", err)
	}
	geos, err := openGeos(*geoPath, langs)
	if err != nil {
		return err
	}
	defer geos.Close()
	var places []demoPlace // what the sign-in form offers: only with the demo's own database
	if *geoPath == "" {
		places = demoPlaces // no MaxMind key needed: the demo's own six cities
	}
	// Listen first: a demo that cannot bind its port leaves no new
	// database (or folder) behind.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("%w (pick another -addr; port 0 takes any free one)", err)
	}
	if err := prepareDemoDB(*dbPath); err != nil {
		ln.Close()
		return err
	}
	// UseStoredIdleTimeout: a demo pointed at an app's file (stopped) must
	// not store its own idle timeout there, which the next clear-expired
	// would apply.
	store, err := openStore(*dbPath, &usersessions.Options{
		OpenTimeout: operatorOpenTimeout,
		IdleTimeout: usersessions.UseStoredIdleTimeout,
		// The account-security features, shown: "Recently ended" on the
		// sessions page, at most demoMaxPerUser sessions per user, and a
		// log line where an app would email about a new device.
		History:    demoHistory,
		MaxPerUser: demoMaxPerUser,
		Hooks:      usersessions.Hooks{Created: newSignInLogger(stderr, geos.def)},
	})
	if err != nil {
		ln.Close()
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	return serveDemo(ctx, ln, store, demoConfig{geo: geos.def, geoByLang: geos.byLang, trusted: trusted, places: places, dbsc: *dbsc}, stdout, stderr)
}

// parseLangs splits -geoip-lang's comma-separated list, each a language
// tag; empty entries are skipped.
func parseLangs(list string) ([]string, error) {
	var langs []string
	for l := range strings.SplitSeq(list, ",") {
		if l = strings.TrimSpace(l); l != "" {
			if _, err := language.Parse(l); err != nil {
				return nil, fmt.Errorf("%q is not a language tag such as en, de or pt-BR", l)
			}
			langs = append(langs, l)
		}
	}
	return langs, nil
}

// prepareDemoDB readies the demo's -db before it is opened: the default
// file's folder is made, and an existing file is checked first, as
// operator commands do. A database server needs neither.
func prepareDemoDB(dbPath string) error {
	if isDatabaseURL(dbPath) {
		return nil
	}
	if dbPath == defaultDBPath() {
		if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
			return err
		}
	}
	if fi, err := os.Stat(dbPath); err == nil && fi.Size() > 0 {
		if _, err := probeFile(dbPath); err != nil {
			return err
		}
	}
	return nil
}

// The demo's account-security settings.
const (
	demoHistory    = 7 * 24 * time.Hour
	demoMaxPerUser = 10
)

// newSignInLogger returns the demo's Hooks.Created: where an app would
// email "new sign-in from Chrome on Windows in London", the demo logs it.
func newSignInLogger(w io.Writer, geo *usersessions.Geo) func(context.Context, *usersessions.Session, bool) {
	log := slog.New(slog.NewTextHandler(w, nil))
	return func(ctx context.Context, s *usersessions.Session, newDevice bool) {
		if !newDevice {
			return
		}
		msg := "demo: new sign-in from " + cmp.Or(usersessions.Device(s.UserAgent), "an unknown device")
		if where := geo.Location(s.IP); where != "" {
			msg += " in " + where
		}
		log.InfoContext(ctx, msg+" (an app would email the user now)", "user", s.UserID)
	}
}

// demoConfig is how the demo shows and finds addresses.
type demoConfig struct {
	geo       *usersessions.Geo            // nil: no locations
	geoByLang map[string]*usersessions.Geo // places named in a page's language (httpx's GeoByLanguage)
	trusted   []netip.Prefix               // proxies whose X-Forwarded-For is believed
	// places are what the sign-in form offers to sign in "as if from":
	// the networks of the demo's own GeoIP database. Empty with a real one.
	places []demoPlace
	// dbsc turns on device-bound sessions (httpx.Options.DBSC).
	dbsc bool
}

// serveDemo serves the demo on ln until ctx is done, then shuts down
// gracefully and closes the store (which flushes pending activity).
func serveDemo(ctx context.Context, ln net.Listener, store *usersessions.Store, cfg demoConfig, stdout, stderr io.Writer) (err error) {
	defer closeStore(store, &err)
	// Opt in to the control socket, so "usersessions ls/revoke -db FILE"
	// work while the demo holds the file.
	// Only a file has a place for one beside it.
	var ctl *control.Server
	var cerr error
	if fi, err := os.Stat(store.Path()); err == nil && fi.Mode().IsRegular() {
		ctl, cerr = control.Serve(store, "")
	}
	if cerr != nil {
		fmt.Fprintf(stderr, "usersessions demo: no control socket (operator commands cannot reach the demo): %v\n", cerr)
	} else {
		defer stopGracefully(ctl) // before the store closes
	}
	srv := &http.Server{
		Handler:           newDemoHandler(store, cfg),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(slog.NewTextHandler(stderr, nil), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "usersessions demo listening on %s\n", demoURL(ln.Addr()))
	fmt.Fprintf(stdout, "database %s; stop with Ctrl-C\n", store.Path())
	if ctl != nil {
		fmt.Fprintf(stdout, "control socket %s: usersessions ls, revoke, stats, backup work meanwhile\n", ctl.Path())
	}
	if len(cfg.places) > 0 {
		fmt.Fprintln(stdout, "locations: a built-in demo GeoIP database of six cities (sign in \"as if from\" one); -geoip FILE for a real one")
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stopGracefully(srv)
	fmt.Fprintln(stderr, "usersessions demo stopped")
	return nil
}

// stopGracefully stops a server (the demo's, its control socket): the
// requests in progress get a few seconds to finish, then they are ended.
func stopGracefully(srv interface {
	Shutdown(context.Context) error
	Close() error
}) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
}

// demoURL is the address to open in a browser: the listener's real
// address, with "localhost" for a wildcard one.
func demoURL(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	host := ap.Addr().Unmap().String()
	if ap.Addr().IsUnspecified() {
		host = "localhost"
	} else if ap.Addr().Unmap().Is6() {
		host = "[" + host + "]"
	}
	return "http://" + host + ":" + strconv.Itoa(int(ap.Port())) + "/"
}

// parsePrefixes reads "10.0.0.0/8,192.168.1.7": CIDRs or single addresses.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR or an IP address", part)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// demoPage is the data of the demo's templates.
type demoPage struct {
	Title       string     // message key of the title
	Lang        string     // the page's language, a tag of httpx.Languages
	Langs       []langLink // this page in every language
	User        string     // signed-in user, "" when anonymous
	Admin       bool
	Device      string // of the current session
	IP          string
	Location    string
	DBPath      string
	Error       string // login form: message key of the problem
	Username    string // login form value
	Next        string // login form: where to go after signing in
	MaxUsername int
	Places      []placeOption // login form: "sign in as if from"; empty with a real GeoIP database
	From        string        // login form: the chosen place's key
}

// placeOption is one choice of the login form's "as if from" list.
type placeOption struct {
	Key, Label string
}

type demo struct {
	m         *httpx.Manager
	store     *usersessions.Store
	geo       *usersessions.Geo
	geoByLang map[string]*usersessions.Geo
	places    []demoPlace
	log       *slog.Logger
}

// newDemoHandler returns the demo app: the home page, sign-in and sign-out,
// the httpx session views at /account/sessions/ and the admin view at
// /admin/sessions/ for the user named "admin". Every request goes through
// the httpx session middleware, and every POST through
// http.CrossOriginProtection. With cfg.places, the sign-in form offers to
// sign in as if from one of them (withPlace). With cfg.dbsc, Chrome binds
// each session to its device (DBSC) when the demo is reached over HTTPS.
func newDemoHandler(store *usersessions.Store, cfg demoConfig) http.Handler {
	d := &demo{
		store:     store,
		geo:       cfg.geo,
		geoByLang: cfg.geoByLang,
		places:    cfg.places,
		log:       slog.Default(),
	}
	trusted := cfg.trusted
	opts := &httpx.Options{ClientIP: func(r *http.Request) netip.Addr {
		if p := placeFrom(r.Context()); p != nil {
			return p.Addr
		}
		return httpx.ClientIP(r, trusted)
	}}
	if cfg.dbsc {
		opts.DBSC = &httpx.DBSCOptions{}
	}
	d.m = httpx.New(store, opts)
	// The views speak the language of the demo's pages, and name places
	// in it.
	views := &httpx.ViewOptions{Geo: cfg.geo, GeoByLanguage: cfg.geoByLang, Language: requestLanguage,
		LoginURL: "/login", LogoutURL: "/", Templates: viewTemplates()}
	admin := &httpx.AdminOptions{Allow: isAdmin, Geo: cfg.geo, GeoByLanguage: cfg.geoByLang, Language: requestLanguage,
		LogoutURL: "/", Templates: viewTemplates()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.home)
	mux.HandleFunc("GET /login", d.loginForm)
	mux.HandleFunc("POST /login", d.login)
	mux.HandleFunc("POST /logout", d.logout)
	mux.Handle(sessionsPath, d.m.SessionsHandler(views))
	mux.Handle(adminPath, d.adminGate(d.m.AdminHandler(admin)))
	return rememberLanguage(d.withPlace(d.m.Handler(http.NewCrossOriginProtection().Handler(mux))))
}

// Signing in "as if from" a place (a demo feature, with the demo's own
// GeoIP database only): the sign-in form's "from" field names a place, the
// demo remembers it in a cookie, and while the cookie is there the
// session middleware sees the place's address as the client's, so the
// session shows that city. Signing in without a place, or signing out,
// drops the cookie.

// fromCookie remembers the place a browser signed in "as if from".
const fromCookie = "usersessions_demo_from"

type placeKey struct{}

// placeFrom returns the place withPlace found for the request, or nil.
func placeFrom(ctx context.Context) *demoPlace {
	p, _ := ctx.Value(placeKey{}).(*demoPlace)
	return p
}

// maxLoginForm bounds the sign-in form's body.
const maxLoginForm = 4 << 10

// withPlace runs before the session middleware, which takes the client's
// address at the start of each request: it finds the place of the request
// (the sign-in form's choice, or the cookie of an earlier one) and puts it
// in the context for the middleware's ClientIP.
func (d *demo) withPlace(next http.Handler) http.Handler {
	if len(d.places) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p *demoPlace
		if r.Method == http.MethodPost && r.URL.Path == "/login" {
			r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			p = d.place(r.PostForm.Get("from"))
		} else if c, err := r.Cookie(fromCookie); err == nil {
			p = d.place(c.Value)
		}
		if p != nil {
			r = r.WithContext(context.WithValue(r.Context(), placeKey{}, p))
		}
		next.ServeHTTP(w, r)
	})
}

// place returns the offered place with key, or nil.
func (d *demo) place(key string) *demoPlace {
	for i := range d.places {
		if d.places[i].Key == key {
			return &d.places[i]
		}
	}
	return nil
}

// setFrom remembers the place of a sign-in, or forgets it (p nil).
func (d *demo) setFrom(w http.ResponseWriter, r *http.Request, p *demoPlace) {
	if len(d.places) == 0 {
		return
	}
	c := &http.Cookie{Name: fromCookie, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil}
	if p != nil {
		c.Value = p.Key
	} else {
		if _, err := r.Cookie(fromCookie); err != nil {
			return // nothing to forget
		}
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// isAdmin is the admin view's Allow: the signed-in user is exactly "admin".
func isAdmin(r *http.Request) bool {
	s := httpx.FromContext(r.Context())
	return s != nil && s.UserID == adminUser
}

// adminGate answers a person's browser before the admin view refuses it:
// visitors who are not signed in go to the sign-in page, other users get a
// page that says who may enter. JSON clients and POSTs get the admin view's
// own 403.
func (d *demo) adminGate(admin http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAdmin(r) || r.Method != http.MethodGet || wantsJSON(r) {
			admin.ServeHTTP(w, r)
			return
		}
		page := d.page(r, "admins.title")
		if page.User == "" {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
			return
		}
		d.render(w, http.StatusForbidden, "forbidden.html", page)
	})
}

// wantsJSON is a rough version of the views' content negotiation, enough
// to leave JSON clients to the admin view's JSON errors.
func wantsJSON(r *http.Request) bool {
	return r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "json")
}

// page returns the data of a page titled with the message key title, in
// the request's language.
func (d *demo) page(r *http.Request, title string) *demoPage {
	lang := requestLanguage(r)
	p := &demoPage{Title: title, Lang: lang, Langs: langLinks(r, lang), DBPath: d.store.Path(), MaxUsername: maxUsername}
	geo := d.geo
	if g, ok := d.geoByLang[lang]; ok {
		geo = g
	}
	for _, pl := range d.places {
		p.Places = append(p.Places, placeOption{Key: pl.Key, Label: geo.Location(pl.Addr)})
	}
	if pl := placeFrom(r.Context()); pl != nil {
		p.From = pl.Key
	}
	if s := httpx.FromContext(r.Context()); s != nil {
		p.User = s.UserID
		p.Admin = s.UserID == adminUser
		p.Device = usersessions.Device(s.UserAgent)
		if s.IP.IsValid() {
			p.IP = s.IP.String()
		}
		p.Location = geo.Location(s.IP)
	}
	return p
}

func (d *demo) home(w http.ResponseWriter, r *http.Request) {
	d.render(w, http.StatusOK, "home.html", d.page(r, "home.title"))
}

func (d *demo) loginForm(w http.ResponseWriter, r *http.Request) {
	page := d.page(r, "login.title")
	page.Next = httpx.NextURL(r, "")
	d.render(w, http.StatusOK, "login.html", page)
}

func (d *demo) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("username"))
	from := r.PostForm.Get("from")
	msg := checkUsername(name)
	if msg == "" && from != "" && d.place(from) == nil {
		msg = "err.place"
	}
	if msg != "" {
		page := d.page(r, "login.title")
		page.Error, page.Username, page.Next = msg, name, httpx.NextURL(r, "")
		d.render(w, http.StatusBadRequest, "login.html", page)
		return
	}
	if err := httpx.Login(w, r, name); err != nil {
		d.log.ErrorContext(r.Context(), "demo: login", "err", err)
		http.Error(w, "could not sign in", http.StatusInternalServerError)
		return
	}
	d.setFrom(w, r, d.place(from))
	http.Redirect(w, r, httpx.NextURL(r, sessionsPath), http.StatusSeeOther)
}

// checkUsername returns why name cannot be a user name, as the key of a
// message of demoText, or "".
func checkUsername(name string) string {
	switch {
	case name == "":
		return "err.empty"
	case !utf8.ValidString(name):
		return "err.invalid"
	case utf8.RuneCountInString(name) > maxUsername:
		return "err.long"
	}
	for _, r := range name {
		if r != ' ' && !unicode.IsPrint(r) {
			return "err.chars"
		}
	}
	return ""
}

func (d *demo) logout(w http.ResponseWriter, r *http.Request) {
	if err := httpx.Logout(w, r); err != nil {
		d.log.ErrorContext(r.Context(), "demo: logout", "err", err)
		http.Error(w, "could not sign out", http.StatusInternalServerError)
		return
	}
	d.setFrom(w, r, nil)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// render writes a demo page; a template error is a 500, not half a page.
func (d *demo) render(w http.ResponseWriter, code int, name string, page *demoPage) {
	var buf bytes.Buffer
	if err := demoPages[page.Lang].ExecuteTemplate(&buf, name, page); err != nil {
		d.log.Error("demo: rendering "+name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", page.Lang)
	h.Add("Vary", "Accept-Language")
	h.Set("Content-Security-Policy", demoCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}
