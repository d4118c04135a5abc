package usersessions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
	"golang.org/x/text/language"
)

// Errors returned by OpenGeo and Reload, and ErrGeoInvalid by
// geoupdate.Download too. Test for them with errors.Is: they are wrapped
// with the file path.
var (
	// ErrGeoInvalid reports a file that is not a readable MaxMind DB: empty,
	// truncated, garbage, or failing GeoOptions.Verify.
	ErrGeoInvalid = errors.New("usersessions: invalid GeoIP database")
	// ErrGeoDatabaseType reports a valid MaxMind DB that is not a City or
	// Country database (an ASN database, for example), whose records hold
	// no location.
	ErrGeoDatabaseType = errors.New("usersessions: not a GeoIP City or Country database")
	// ErrGeoNoDatabase reports a directory holding no *City*.mmdb or
	// *Country*.mmdb file.
	ErrGeoNoDatabase = errors.New("usersessions: no GeoIP City or Country database in directory")
	// ErrGeoClosed is returned by Reload on a closed or nil *Geo.
	ErrGeoClosed = errors.New("usersessions: GeoIP database closed")
)

// GeoOptions configures OpenGeo. The zero value (or nil) gives English names,
// no watcher, no full verification and slog.Default() for logs.
type GeoOptions struct {
	// Languages lists the preferred languages for names, best first, as
	// BCP 47 tags like GeoIP's locale codes ("nl", "pt-BR", "zh-CN").
	// Each is matched against the languages the records hold, whatever
	// the file's metadata lists: first a name in that very language
	// (ignoring case and spelling: "zh-cn", "zh-Hans-CN" find "zh-CN"),
	// else one in another form of its base language, as
	// golang.org/x/text/language parses them: "zh" finds "zh-CN", "pt"
	// finds "pt-BR", "pt-PT" falls back to "pt" and then "pt-BR", and
	// "zh-HK" prefers "zh-TW" (same script) to "zh-CN". Each field (city,
	// region, country, continent) falls back on its own: a city named only
	// in English still shows when the country has a Dutch name. After the
	// list comes English (any form), then the languages the metadata
	// lists, then any name at all, by language code. Default {"en"}.
	Languages []string

	// WatchInterval, when positive, starts a goroutine that checks the
	// database file every interval and reloads it once it has changed and
	// then stayed the same for one more interval, so a file still being
	// copied is not read half-written. A file that fails to load is logged
	// once and the current database is kept. Close stops the watcher.
	// Zero (the default) watches nothing: call Reload yourself, after a
	// cron job or on SIGHUP.
	WatchInterval time.Duration

	// Verify runs the library's full structural check (search tree, data
	// section) on every open and reload. It walks the whole database, which
	// takes time in proportion to its size, so it is off by default; the
	// cheap checks (metadata, database type) always run, and a record that
	// fails to decode only ever costs its own lookup.
	Verify bool

	// Logger receives the problems Geo handles by itself: records that fail
	// to decode (logged once per loaded database, without the address) and
	// reloads by the watcher that fail. Default slog.Default().
	Logger *slog.Logger
}

// LocationInfo is what a City or Country database knows about an address.
// Names follow GeoOptions.Languages. Fields the database does not have are
// empty or zero: Country databases have no City, Region, TimeZone or
// coordinates.
type LocationInfo struct {
	City          string  // "London"
	Region        string  // the largest subdivision: "England", "Overijssel"
	Country       string  // where the address is used: "United Kingdom"
	CountryCode   string  // ISO 3166-1 alpha-2: "GB"
	Continent     string  // "Europe"
	ContinentCode string  // "EU"
	TimeZone      string  // IANA name: "Europe/London"
	Latitude      float64 // approximate; both 0 when unknown
	Longitude     float64
}

// String returns the short form Geo.Location shows: "City, Country",
// "Country", the city alone when it has no country, or "".
func (l LocationInfo) String() string {
	switch {
	case l.City != "" && l.Country != "":
		return l.City + ", " + l.Country
	case l.City != "":
		return l.City
	default:
		return l.Country
	}
}

// Geo finds where IP addresses are, from a MaxMind GeoIP2 or GeoLite2 City or
// Country database (or another database with their record layout, such as
// DB-IP's lite editions). It is safe for concurrent use.
//
// A nil *Geo is valid and knows nothing: Location returns "", LocationInfo
// returns false, Close returns nil and Reload returns ErrGeoClosed, so an
// application runs the same without a database.
//
// The database is read into memory rather than memory-mapped. Reload then
// only swaps a pointer: lookups still running on the old database keep it
// alive until they finish, and the garbage collector frees it after, so no
// lookup can ever touch a closed reader and no reference counting is needed.
// It also means a file rewritten in place cannot change under a running
// lookup. The price is memory: the file's size (GeoLite2-City is about
// 60 MB), twice that for a moment during a reload.
type Geo struct {
	path    string    // file or directory as given; "" for OpenGeoBytes
	prefs   []geoLang // GeoOptions.Languages, then English
	verify  bool
	logger  *slog.Logger
	current atomic.Pointer[geoDB] // nil once closed

	mu     sync.Mutex // serializes loads and Close
	closed bool
	loaded []fileSig // the files behind current, for the watcher
	stop   chan struct{}
	done   chan struct{}
}

// geoDB is one loaded generation of the database.
type geoDB struct {
	reader *maxminddb.Reader
	file   string    // for log messages
	prefs  []geoLang // the Geo's, shared and read-only
	ipv4   bool      // IPv4-only database: IPv6 lookups would only error

	// fallback is the Country database of the same directory, asked about
	// what this City database does not know (see OpenGeo); nil if none.
	fallback *geoDB

	// metaLangs are the languages the metadata lists, in its order, and
	// metaTags the same parsed; keyTags caches other record languages
	// (see keyLang), keyTagsN counts its stores.
	metaLangs []string
	metaTags  map[string]geoLang
	keyTags   sync.Map
	keyTagsN  atomic.Int64

	logged atomic.Bool // a decode failure was logged

	// cache maps record offsets to decoded answers. Many addresses share a
	// record (one per city), and decoding a record's name maps costs far
	// more than the tree walk, so session lists repeat the work for free.
	// It belongs to one generation: offsets mean nothing in another file.
	cacheMu sync.Mutex
	cache   map[uintptr]geoAnswer
}

type geoAnswer struct {
	info  LocationInfo
	label string // info.String(), kept so Location does not allocate
}

// geoCacheSize bounds the decoded-record cache of one database generation.
// When full it is emptied: simpler than LRU, and a session view touches far
// fewer records.
const geoCacheSize = 4096

// fileSig identifies one version of a file on disk.
type fileSig struct {
	path string
	fi   os.FileInfo
}

func (s fileSig) same(o fileSig) bool {
	if s.fi == nil || o.fi == nil {
		return s.fi == o.fi && s.path == o.path
	}
	// SameFile catches an atomic rename (a new inode); size and time catch
	// a rewrite in place.
	return s.path == o.path && os.SameFile(s.fi, o.fi) &&
		s.fi.Size() == o.fi.Size() && s.fi.ModTime().Equal(o.fi.ModTime())
}

// OpenGeo opens a GeoIP database: path is a .mmdb file, or a directory in
// which the first *City*.mmdb file in name order is used, else the first
// *Country*.mmdb (so GeoIP2-City.mmdb wins over GeoLite2-City.mmdb).
// When the directory holds both a City and a Country database, both are
// loaded: an address the City database does not know, or whose City record
// fails to decode or names no country, is looked up in the Country
// database, which then supplies the country and continent. Names in the
// directory starting with "." are ignored, as are the temporary files
// geoupdate.Download writes.
//
// A missing file is an error wrapping fs.ErrNotExist; an empty, truncated or
// corrupt file one wrapping ErrGeoInvalid; a database of another kind one
// wrapping ErrGeoDatabaseType. opts may be nil.
func OpenGeo(path string, opts *GeoOptions) (*Geo, error) {
	g := newGeo(path, opts)
	if err := g.load(); err != nil {
		return nil, err
	}
	if opts != nil && opts.WatchInterval > 0 {
		g.stop = make(chan struct{})
		g.done = make(chan struct{})
		go g.watch(opts.WatchInterval)
	}
	return g, nil
}

// OpenGeoBytes opens a database held in memory, for example one embedded in
// the binary. The Geo keeps data: do not modify it afterwards. It has no
// file, so Reload returns an error and GeoOptions.WatchInterval is ignored.
func OpenGeoBytes(data []byte, opts *GeoOptions) (*Geo, error) {
	g := newGeo("", opts)
	db, err := g.openDB(data, "(bytes)")
	if err != nil {
		return nil, fmt.Errorf("open GeoIP database from bytes: %w", err)
	}
	g.current.Store(db)
	return g, nil
}

func newGeo(path string, opts *GeoOptions) *Geo {
	var o GeoOptions
	if opts != nil {
		o = *opts
	}
	g := &Geo{path: path, verify: o.Verify, logger: o.Logger}
	if g.logger == nil {
		g.logger = slog.Default()
	}
	for _, l := range o.Languages {
		if l = strings.TrimSpace(l); l != "" {
			g.prefs = append(g.prefs, parseGeoLang(l))
		}
	}
	g.prefs = append(g.prefs, parseGeoLang("en"))
	return g
}

// Location returns where ip is, for display: "London, United Kingdom",
// "United Kingdom" when the database knows only the country, or "" for
// private, loopback, link-local, multicast, unspecified, carrier-grade NAT
// (100.64.0.0/10), reserved (0.0.0.0/8, 240.0.0.0/4) and unknown
// addresses, and on a nil or closed Geo. IPv6 addresses that embed an IPv4
// one are looked up as that IPv4 address, as MaxMind's databases alias
// them: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), 6to4
// (2002:aabb:ccdd::/48) and Teredo (2001:0:aabb:ccdd::/64, the server's
// address); so they answer the same in an IPv4-only database, and never
// for a private IPv4 address.
func (g *Geo) Location(ip netip.Addr) string {
	a, ok := g.lookup(ip)
	if !ok {
		return ""
	}
	return a.label
}

// LocationInfo returns everything the database knows about ip, and false
// when Location would return "" for lack of a record (see Location). A
// record that fails to decode also gives false, and is logged.
func (g *Geo) LocationInfo(ip netip.Addr) (LocationInfo, bool) {
	a, ok := g.lookup(ip)
	return a.info, ok
}

func (g *Geo) lookup(ip netip.Addr) (geoAnswer, bool) {
	if g == nil {
		return geoAnswer{}, false
	}
	ip = geoIPv4Of(ip.WithZone(""))
	if !geoPublic(ip) {
		return geoAnswer{}, false
	}
	db := g.current.Load()
	if db == nil {
		return geoAnswer{}, false
	}
	a, ok := db.lookup(ip, g.logger)
	if db.fallback == nil || ok && (a.info.Country != "" || a.info.CountryCode != "") {
		return a, ok
	}
	c, cok := db.fallback.lookup(ip, g.logger)
	switch {
	case !cok:
		return a, ok
	case !ok:
		return c, true
	}
	// A City record without a country: take it, and the continent where
	// missing, from the Country database.
	info := a.info
	info.Country, info.CountryCode = c.info.Country, c.info.CountryCode
	if info.Continent == "" && info.ContinentCode == "" {
		info.Continent, info.ContinentCode = c.info.Continent, c.info.ContinentCode
	}
	return geoAnswer{info: info, label: info.String()}, true
}

// geoReserved are networks net/netip does not call private or special but
// that are just as meaningless to a GeoIP database: the shared address
// space of carrier-grade NAT (RFC 6598), "this network" (RFC 791) and the
// reserved class E with the broadcast address (RFC 1112, RFC 919).
var geoReserved = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// geoIPv4Of returns the IPv4 address that MaxMind's databases look up for
// ip (see Location), or ip itself.
func geoIPv4Of(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if !ip.Is6() {
		return ip
	}
	b := ip.As16()
	var v4 [4]byte
	switch {
	case b[0] == 0x20 && b[1] == 0x02: // 6to4, RFC 3056
		copy(v4[:], b[2:6])
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0: // Teredo, RFC 4380
		copy(v4[:], b[4:8])
	case [12]byte(b[:12]) == [12]byte{}: // IPv4-compatible, RFC 4291 2.5.5.1
		copy(v4[:], b[12:])
	default:
		return ip
	}
	return netip.AddrFrom4(v4)
}

// geoPublic reports whether ip is worth looking up.
func geoPublic(ip netip.Addr) bool {
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() ||
		ip.IsLinkLocalUnicast() || ip.IsMulticast() {
		return false
	}
	for _, p := range geoReserved {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

func (db *geoDB) lookup(ip netip.Addr, logger *slog.Logger) (geoAnswer, bool) {
	if db.ipv4 && !ip.Is4() {
		return geoAnswer{}, false
	}
	res := db.reader.Lookup(ip)
	if err := res.Err(); err != nil {
		db.logFailure(logger, "lookup", err)
		return geoAnswer{}, false
	}
	if !res.Found() {
		return geoAnswer{}, false
	}
	off := res.Offset()
	db.cacheMu.Lock()
	a, ok := db.cache[off]
	db.cacheMu.Unlock()
	if ok {
		return a, true
	}
	a, err := db.decode(res)
	if err != nil {
		db.logFailure(logger, "decode", err)
		return geoAnswer{}, false
	}
	db.cacheMu.Lock()
	if len(db.cache) >= geoCacheSize {
		clear(db.cache)
	}
	db.cache[off] = a
	db.cacheMu.Unlock()
	return a, true
}

// logFailure logs the first failing record of a database at Warn, and the
// rest at Debug, so a damaged file cannot flood the log. The address is left
// out: it is personal data, and the error names the record's offset.
func (db *geoDB) logFailure(logger *slog.Logger, op string, err error) {
	level := slog.LevelDebug
	if db.logged.CompareAndSwap(false, true) {
		level = slog.LevelWarn
	}
	logger.Log(context.Background(), level, "usersessions: GeoIP record unreadable; location left empty",
		"op", op, "file", db.file, "err", err)
}

// geoRecord is the part of a GeoIP2 City or Country record that Geo shows.
type geoRecord struct {
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
	Subdivisions []struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	Country struct {
		ISOCode string            `maxminddb:"iso_code"`
		Names   map[string]string `maxminddb:"names"`
	} `maxminddb:"country"`
	Continent struct {
		Code  string            `maxminddb:"code"`
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"continent"`
	Location struct {
		Latitude  float64 `maxminddb:"latitude"`
		Longitude float64 `maxminddb:"longitude"`
		TimeZone  string  `maxminddb:"time_zone"`
	} `maxminddb:"location"`
}

// decode reads a record. The library's reflection decoder bounds the work
// and memory one record may cost, so a hostile file cannot blow up here.
func (db *geoDB) decode(res maxminddb.Result) (a geoAnswer, err error) {
	var rec geoRecord
	if err := res.Decode(&rec); err != nil {
		return geoAnswer{}, err
	}
	info := LocationInfo{
		City:          db.name(rec.City.Names),
		Country:       db.name(rec.Country.Names),
		CountryCode:   rec.Country.ISOCode,
		Continent:     db.name(rec.Continent.Names),
		ContinentCode: rec.Continent.Code,
		TimeZone:      rec.Location.TimeZone,
		Latitude:      rec.Location.Latitude,
		Longitude:     rec.Location.Longitude,
	}
	if len(rec.Subdivisions) > 0 {
		info.Region = db.name(rec.Subdivisions[0].Names)
	}
	return geoAnswer{info: info, label: info.String()}, nil
}

// name picks a name for a record field: for each preference (see
// GeoOptions.Languages), then English, the best name in its language; then
// one in a language the metadata lists, in its order; then any, in key order
// so the answer does not change from one call to the next.
func (db *geoDB) name(names map[string]string) string {
	if len(names) == 0 {
		return ""
	}
	for i := range db.prefs {
		if n := db.nameIn(names, &db.prefs[i]); n != "" {
			return n
		}
	}
	for _, l := range db.metaLangs {
		if n := names[l]; n != "" {
			return n
		}
	}
	best, found := "", false
	for k, n := range names {
		if n != "" && (!found || k < best) {
			best, found = k, true
		}
	}
	return names[best]
}

// geoLang is one preferred language, parsed once.
type geoLang struct {
	raw    string
	tag    language.Tag
	parsed bool            // raw is a valid BCP 47 tag
	base   language.Base   // its base language
	script language.Script // its script, explicit or most likely
}

func parseGeoLang(s string) geoLang {
	l := geoLang{raw: s}
	t, err := language.Parse(s)
	if err != nil {
		return l
	}
	l.tag, l.parsed = t, true
	l.base, _ = t.Base()
	l.script, _ = t.Script()
	return l
}

// nameIn returns the name in p's language: the one in p itself (case and
// spelling ignored), else the best of those in another form of p's base
// language, ranked by sharing p's script ("zh-HK" is closer to "zh-TW"
// than to "zh-CN"), then by being the bare language ("pt" before "pt-BR"),
// then by key. It returns "" when names has none of them.
func (db *geoDB) nameIn(names map[string]string, p *geoLang) string {
	if n := names[p.raw]; n != "" {
		return n
	}
	best, bestRank := "", 0
	for k, n := range names {
		if n == "" {
			continue
		}
		if strings.EqualFold(k, p.raw) {
			return n
		}
		if !p.parsed {
			continue
		}
		kl := db.keyLang(k)
		if !kl.parsed || kl.base != p.base {
			continue
		}
		if kl.tag == p.tag {
			return n
		}
		rank := 1
		if kl.script != p.script {
			rank += 2
		}
		if _, s, r := kl.tag.Raw(); s != (language.Script{}) || r != (language.Region{}) {
			rank++
		}
		if best == "" || rank < bestRank || rank == bestRank && k < best {
			best, bestRank = k, rank
		}
	}
	if best == "" {
		return ""
	}
	return names[best]
}

// geoKeyCacheMax bounds the parsed record languages a database generation
// keeps beyond those its metadata lists, so a hostile file cannot grow it.
const geoKeyCacheMax = 64

// keyLang parses a record's language key. The metadata's languages are
// parsed at open; other keys are cached up to geoKeyCacheMax, then parsed
// on every use (decoded records are cached anyway).
func (db *geoDB) keyLang(k string) geoLang {
	if l, ok := db.metaTags[k]; ok {
		return l
	}
	if v, ok := db.keyTags.Load(k); ok {
		return v.(geoLang)
	}
	l := parseGeoLang(k)
	if db.keyTagsN.Add(1) <= geoKeyCacheMax {
		db.keyTags.Store(strings.Clone(k), l)
	}
	return l
}

// openDB validates data as a City or Country database and wraps it; name
// only labels log messages.
func (g *Geo) openDB(data []byte, name string) (*geoDB, error) {
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGeoInvalid, err)
	}
	if err := checkGeoSeparator(data, r.Metadata); err != nil {
		return nil, err
	}
	if err := checkGeoReader(r, g.verify); err != nil {
		return nil, err
	}
	db := &geoDB{
		reader:    r,
		file:      name,
		prefs:     g.prefs,
		ipv4:      r.Metadata.IPVersion == 4,
		metaLangs: r.Metadata.Languages,
		metaTags:  make(map[string]geoLang, len(r.Metadata.Languages)),
		cache:     make(map[uintptr]geoAnswer),
	}
	for _, l := range r.Metadata.Languages {
		db.metaTags[l] = parseGeoLang(l)
	}
	return db, nil
}

// checkGeoSeparator checks the 16 zero bytes that must follow the search
// tree: cheap, and a damaged node count or record size would otherwise make
// every lookup fail.
func checkGeoSeparator(data []byte, md maxminddb.Metadata) error {
	tree := uint64(md.NodeCount) * uint64(md.RecordSize) / 4
	if tree > uint64(len(data)) || uint64(len(data))-tree < 16 || !isZero(data[tree:tree+16]) {
		return fmt.Errorf("%w: search tree does not end where the metadata says (node count %d, record size %d)",
			ErrGeoInvalid, md.NodeCount, md.RecordSize)
	}
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// checkGeoReader rejects databases Geo cannot use. The database type is
// checked by name: MaxMind's are GeoIP2-City, GeoLite2-Country,
// GeoIP2-Enterprise (a City superset) and so on, DB-IP's DBIP-City-Lite.
func checkGeoReader(r *maxminddb.Reader, verify bool) error {
	t := strings.ToLower(r.Metadata.DatabaseType)
	if !strings.Contains(t, "city") && !strings.Contains(t, "country") && !strings.Contains(t, "enterprise") {
		return fmt.Errorf("%w (type %q)", ErrGeoDatabaseType, r.Metadata.DatabaseType)
	}
	if verify {
		if err := r.Verify(); err != nil {
			return fmt.Errorf("%w: %w", ErrGeoInvalid, err)
		}
	}
	return nil
}

// load reads the database behind g.path and makes it current. The caller
// must not hold g.mu.
func (g *Geo) load() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.loadLocked()
}

func (g *Geo) loadLocked() error {
	if g.closed {
		return ErrGeoClosed
	}
	files, err := resolveGeoPath(g.path)
	if err != nil {
		return err
	}
	var dbs []*geoDB
	var sigs []fileSig
	for _, file := range files {
		data, sig, err := readGeoFile(file)
		if err != nil {
			return err
		}
		db, err := g.openDB(data, file)
		if err != nil {
			return fmt.Errorf("open GeoIP database %s: %w", file, err)
		}
		dbs = append(dbs, db)
		sigs = append(sigs, sig)
	}
	if len(dbs) > 1 {
		dbs[0].fallback = dbs[1]
	}
	g.current.Store(dbs[0])
	g.loaded = sigs
	return nil
}

// readGeoFile reads file whole, and returns the signature of the very file
// it read, so a replacement racing with the read is noticed next time.
func readGeoFile(file string) ([]byte, fileSig, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fileSig{}, fmt.Errorf("open GeoIP database: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileSig{}, fmt.Errorf("open GeoIP database: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fileSig{}, fmt.Errorf("open GeoIP database %s: %w: not a regular file", file, ErrGeoInvalid)
	}
	if fi.Size() == 0 {
		return nil, fileSig{}, fmt.Errorf("open GeoIP database %s: %w: empty file", file, ErrGeoInvalid)
	}
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		// The file shrank while we read it: a copy in progress.
		return nil, fileSig{}, fmt.Errorf("open GeoIP database %s: %w: %w", file, ErrGeoInvalid, err)
	}
	return data, fileSig{path: file, fi: fi}, nil
}

// resolveGeoPath returns path itself for a file, or the databases chosen in
// a directory (see OpenGeo): the City one, then the Country one.
func resolveGeoPath(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open GeoIP database: %w", err)
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("open GeoIP database: %w", err)
	}
	var city, country []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(strings.ToLower(name), ".mmdb") || e.IsDir() {
			continue
		}
		switch lower := strings.ToLower(name); {
		case strings.Contains(lower, "city"):
			city = append(city, name)
		case strings.Contains(lower, "country"):
			country = append(country, name)
		}
	}
	sort.Strings(city)
	sort.Strings(country)
	var files []string
	if len(city) > 0 {
		files = append(files, filepath.Join(path, city[0]))
	}
	if len(country) > 0 {
		files = append(files, filepath.Join(path, country[0]))
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("open GeoIP database %s: %w", path, ErrGeoNoDatabase)
	}
	return files, nil
}

// Reload reads the database file again (for a directory, chooses the file
// again) and swaps it in atomically: lookups already running finish on the
// old database, later ones use the new. On error the current database stays
// in use. Reload returns ErrGeoClosed on a closed or nil Geo, and an error on
// a Geo opened with OpenGeoBytes.
func (g *Geo) Reload() error {
	if g == nil {
		return ErrGeoClosed
	}
	if g.path == "" {
		g.mu.Lock()
		closed := g.closed
		g.mu.Unlock()
		if closed {
			return ErrGeoClosed
		}
		return errors.New("usersessions: GeoIP database opened from bytes has no file to reload")
	}
	return g.load()
}

// Close stops the watcher and releases the database; later lookups return
// "". Lookups running during Close finish normally. Close is idempotent and
// returns nil, also on a nil Geo.
func (g *Geo) Close() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	// The reader is not closed: it is plain memory that running lookups may
	// still use, and the garbage collector reclaims it after them.
	g.current.Store(nil)
	stop, done := g.stop, g.done
	g.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done // the watcher takes g.mu, so wait outside it
	}
	return nil
}

// watch polls the database file until Close.
func (g *Geo) watch(interval time.Duration) {
	defer close(g.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	var pending, failed []fileSig
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		sig, err := statGeoPath(g.path)
		if err != nil {
			continue // a file being replaced may be missing for a moment
		}
		g.mu.Lock()
		unchanged := sameSigs(sig, g.loaded)
		g.mu.Unlock()
		switch {
		case unchanged, sameSigs(sig, failed):
			pending = nil
			continue
		case !sameSigs(sig, pending):
			// Changed since the last look: wait one interval for it to settle.
			pending = sig
			continue
		}
		pending = nil
		if err := g.load(); err != nil {
			if errors.Is(err, ErrGeoClosed) {
				return
			}
			failed = sig
			g.logger.Error("usersessions: GeoIP database reload failed; keeping the current one",
				"path", g.path, "err", err)
		}
	}
}

// statGeoPath returns the signatures of the files resolveGeoPath chooses.
func statGeoPath(path string) ([]fileSig, error) {
	files, err := resolveGeoPath(path)
	if err != nil {
		return nil, err
	}
	sigs := make([]fileSig, len(files))
	for i, file := range files {
		fi, err := os.Stat(file)
		if err != nil {
			return nil, err
		}
		sigs[i] = fileSig{path: file, fi: fi}
	}
	return sigs, nil
}

// sameSigs reports whether a and b name the same versions of the same files.
func sameSigs(a, b []fileSig) bool {
	return slices.EqualFunc(a, b, fileSig.same)
}
