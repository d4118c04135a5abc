package usersessions

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/usersessions/usersessions/internal/geotest"
)

// Addresses of the test databases: documentation ranges, so they can never
// collide with a real answer.
var (
	ipLondon  = netip.MustParseAddr("192.0.2.10")
	ipZwolle  = netip.MustParseAddr("198.51.100.7")
	ipHague   = netip.MustParseAddr("203.0.113.5")
	ipJapan   = netip.MustParseAddr("2001:db8::1")
	ipUnknown = netip.MustParseAddr("192.0.3.1")
)

var london = geotest.Entry{
	City: "London", Region: "England", Country: "United Kingdom", CountryCode: "GB",
	Continent: "Europe", ContinentCode: "EU", TimeZone: "Europe/London",
	Latitude: 51.5142, Longitude: -0.0931,
}

// testCities is the standard City database of these tests.
var testCities = map[string]geotest.Entry{
	"192.0.2.0/24": london,
	// Zwolle has only an English city name, but a Dutch country name.
	"198.51.100.0/24": {City: "Zwolle", Country: "Netherlands", CountryCode: "NL",
		CountryNames: map[string]string{"nl": "Nederland"}},
	"203.0.113.0/24": {City: "The Hague", Country: "Netherlands", CountryCode: "NL",
		CityNames:    map[string]string{"nl": "Den Haag", "zh-CN": "海牙", "pt-BR": "Haia"},
		CountryNames: map[string]string{"nl": "Nederland", "zh-CN": "荷兰", "pt-BR": "Países Baixos"}},
	"2001:db8::/32": {Country: "Japan", CountryCode: "JP", Continent: "Asia", ContinentCode: "AS",
		TimeZone: "Asia/Tokyo"},
}

// writeTestCityDB writes a GeoIP2-City database to path.
func writeTestCityDB(t testing.TB, path string, entries map[string]geotest.Entry) {
	t.Helper()
	geotest.Write(t, path, geotest.Build(t, "GeoIP2-City", entries))
}

// writeTestCountryDB writes a GeoIP2-Country database: like writeTestCityDB
// but without cities, regions, time zones or coordinates, as MaxMind's are.
func writeTestCountryDB(t testing.TB, path string, entries map[string]geotest.Entry) {
	t.Helper()
	geotest.Write(t, path, geotest.Build(t, "GeoIP2-Country", entries))
}

// openTestGeo writes entries as a City database and opens it.
func openTestGeo(t testing.TB, entries map[string]geotest.Entry, opts *GeoOptions) (*Geo, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "GeoIP2-City.mmdb")
	writeTestCityDB(t, path, entries)
	g, err := OpenGeo(path, opts)
	if err != nil {
		t.Fatalf("OpenGeo: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g, path
}

func TestGeoCity(t *testing.T) {
	g, _ := openTestGeo(t, testCities, nil)

	cases := []struct {
		ip   netip.Addr
		want string
	}{
		{ipLondon, "London, United Kingdom"},
		{netip.MustParseAddr("::ffff:192.0.2.10"), "London, United Kingdom"}, // IPv4-mapped
		{ipZwolle, "Zwolle, Netherlands"},
		{ipJapan, "Japan"}, // country only
		{ipUnknown, ""},
		{netip.MustParseAddr("2001:db9::1"), ""},
	}
	for _, c := range cases {
		if got := g.Location(c.ip); got != c.want {
			t.Errorf("Location(%v) = %q, want %q", c.ip, got, c.want)
		}
	}

	info, ok := g.LocationInfo(ipLondon)
	want := LocationInfo{
		City: "London", Region: "England", Country: "United Kingdom", CountryCode: "GB",
		Continent: "Europe", ContinentCode: "EU", TimeZone: "Europe/London",
		Latitude: 51.5142, Longitude: -0.0931,
	}
	if !ok || info != want {
		t.Errorf("LocationInfo(%v) = %+v, %v\nwant %+v, true", ipLondon, info, ok, want)
	}
	// The second call is served from the record cache: same answer.
	if again, _ := g.LocationInfo(ipLondon); again != info {
		t.Errorf("cached LocationInfo = %+v, want %+v", again, info)
	}
	if info, ok := g.LocationInfo(ipUnknown); ok || info != (LocationInfo{}) {
		t.Errorf("LocationInfo(unknown) = %+v, %v; want zero, false", info, ok)
	}
}

func TestLocationInfoString(t *testing.T) {
	cases := []struct {
		in   LocationInfo
		want string
	}{
		{LocationInfo{City: "Zwolle", Country: "Netherlands"}, "Zwolle, Netherlands"},
		{LocationInfo{Country: "Netherlands", Continent: "Europe"}, "Netherlands"},
		{LocationInfo{City: "Zwolle"}, "Zwolle"},
		{LocationInfo{Continent: "Europe"}, ""},
	}
	for _, c := range cases {
		if got := c.in.String(); got != c.want {
			t.Errorf("%+v.String() = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestGeoCountryDB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "GeoLite2-Country.mmdb")
	writeTestCountryDB(t, path, testCities)
	g, err := OpenGeo(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got := g.Location(ipLondon); got != "United Kingdom" {
		t.Errorf("Location = %q, want %q", got, "United Kingdom")
	}
	info, ok := g.LocationInfo(ipLondon)
	want := LocationInfo{Country: "United Kingdom", CountryCode: "GB", Continent: "Europe", ContinentCode: "EU"}
	if !ok || info != want {
		t.Errorf("LocationInfo = %+v, %v; want %+v, true", info, ok, want)
	}
}

func TestGeoSkipsNonPublicAddresses(t *testing.T) {
	// The database has records for all these networks, so an empty answer
	// proves Geo did not look them up.
	entries := map[string]geotest.Entry{}
	for _, cidr := range []string{
		"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
		"100.64.0.0/10", "224.0.0.0/4", "0.0.0.0/8", "fc00::/7", "fe80::/10", "ff00::/8", "::1/128",
	} {
		entries[cidr] = geotest.Entry{City: "Nowhere", Country: "Reserved"}
	}
	g, _ := openTestGeo(t, entries, nil)

	for _, s := range []string{
		"10.1.2.3", "172.16.5.4", "192.168.1.1", "127.0.0.1", "169.254.1.1", "100.64.1.1",
		"224.0.0.1", "0.0.0.0", "fd00::1", "fe80::1", "fe80::1%eth0", "ff02::1", "::1",
		"::ffff:10.1.2.3", "::ffff:127.0.0.1",
	} {
		ip := netip.MustParseAddr(s)
		if !g.current.Load().reader.Lookup(ip.Unmap().WithZone("")).Found() && !ip.Unmap().IsUnspecified() {
			t.Fatalf("test database has no record for %v; the test proves nothing", ip)
		}
		if got := g.Location(ip); got != "" {
			t.Errorf("Location(%v) = %q, want \"\"", ip, got)
		}
		if _, ok := g.LocationInfo(ip); ok {
			t.Errorf("LocationInfo(%v) found a record", ip)
		}
	}
	if got := g.Location(netip.Addr{}); got != "" {
		t.Errorf("Location(zero Addr) = %q", got)
	}
}

func TestGeoLanguages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "GeoIP2-City.mmdb")
	entries := maps2(testCities, map[string]geotest.Entry{
		// Names only in a language the metadata does not declare.
		"198.18.0.0/24": {CityNames: map[string]string{"fr": "Lyon"}, CountryNames: map[string]string{"fr": "France"}},
	})
	writeTestCityDB(t, path, entries)

	cases := []struct {
		langs []string
		ip    netip.Addr
		want  string
	}{
		{nil, ipHague, "The Hague, Netherlands"},
		{[]string{"nl"}, ipHague, "Den Haag, Nederland"},
		{[]string{"NL"}, ipHague, "Den Haag, Nederland"},                    // case ignored
		{[]string{"nl"}, ipZwolle, "Zwolle, Nederland"},                     // per-field fallback
		{[]string{"de"}, ipHague, "The Hague, Netherlands"},                 // no German: English
		{[]string{"de", "nl"}, ipHague, "Den Haag, Nederland"},              // next preference
		{[]string{"zh"}, ipHague, "海牙, 荷兰"},                                 // base language finds zh-CN
		{[]string{"pt-PT"}, ipHague, "Haia, Países Baixos"},                 // regional fallback
		{[]string{" ", ""}, ipHague, "The Hague, Netherlands"},              // blanks: default
		{[]string{"nl"}, netip.MustParseAddr("198.18.0.1"), "Lyon, France"}, // last resort
	}
	for _, c := range cases {
		g, err := OpenGeo(path, &GeoOptions{Languages: c.langs})
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Location(c.ip); got != c.want {
			t.Errorf("Languages %q: Location(%v) = %q, want %q", c.langs, c.ip, got, c.want)
		}
		g.Close()
	}
}

// maps2 merges two entry maps into a new one.
func maps2(a, b map[string]geotest.Entry) map[string]geotest.Entry {
	m := make(map[string]geotest.Entry, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func TestGeoNil(t *testing.T) {
	var g *Geo
	if got := g.Location(ipLondon); got != "" {
		t.Errorf("nil Geo: Location = %q", got)
	}
	if _, ok := g.LocationInfo(ipLondon); ok {
		t.Error("nil Geo: LocationInfo found a record")
	}
	if err := g.Close(); err != nil {
		t.Errorf("nil Geo: Close = %v", err)
	}
	if err := g.Reload(); !errors.Is(err, ErrGeoClosed) {
		t.Errorf("nil Geo: Reload = %v, want ErrGeoClosed", err)
	}
}

func TestOpenGeoErrors(t *testing.T) {
	dir := t.TempDir()
	valid := geotest.Build(t, "GeoIP2-City", testCities)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	emptyDir := filepath.Join(dir, "empty")
	if err := os.Mkdir(emptyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write("empty/notes.txt", []byte("not a database"))
	write("empty/GeoLite2-City.mmdb.part", valid) // geoupdate.Download's temporary files
	write("empty/.GeoLite2-City.mmdb", valid)

	cases := []struct {
		name string
		path string
		want error
	}{
		{"missing", filepath.Join(dir, "nope.mmdb"), fs.ErrNotExist},
		{"empty", write("empty.mmdb", nil), ErrGeoInvalid},
		{"truncated half", write("half.mmdb", valid[:len(valid)/2]), ErrGeoInvalid},
		{"truncated tail", write("tail.mmdb", valid[:len(valid)-10]), ErrGeoInvalid},
		{"garbage", write("garbage.mmdb", bytes.Repeat([]byte("garbage!"), 1000)), ErrGeoInvalid},
		{"asn database", write("asn.mmdb", geotest.Build(t, "GeoLite2-ASN", testCities)), ErrGeoDatabaseType},
		{"directory without database", emptyDir, ErrGeoNoDatabase},
		{"missing directory", filepath.Join(dir, "nodir") + string(filepath.Separator), fs.ErrNotExist},
	}
	for _, c := range cases {
		g, err := OpenGeo(c.path, nil)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: OpenGeo error = %v, want %v", c.name, err, c.want)
		}
		if g != nil {
			t.Errorf("%s: OpenGeo returned a Geo with the error", c.name)
		}
		if err != nil && !strings.Contains(err.Error(), filepath.Base(filepath.Clean(c.path))) {
			t.Errorf("%s: error %q does not name the file", c.name, err)
		}
	}
}

func TestOpenGeoDirectory(t *testing.T) {
	dir := t.TempDir()
	writeTestCountryDB(t, filepath.Join(dir, "GeoLite2-Country.mmdb"), testCities)
	if got := mustOpenLocation(t, dir, ipLondon); got != "United Kingdom" {
		t.Errorf("Country only: Location = %q, want %q", got, "United Kingdom")
	}
	writeTestCityDB(t, filepath.Join(dir, "GeoLite2-City.mmdb"), testCities)
	if got := mustOpenLocation(t, dir, ipLondon); got != "London, United Kingdom" {
		t.Errorf("City and Country: Location = %q, want the City database's answer", got)
	}
	// GeoIP2 sorts before GeoLite2, so the commercial database wins.
	writeTestCityDB(t, filepath.Join(dir, "GeoIP2-City.mmdb"), map[string]geotest.Entry{
		"192.0.2.0/24": {City: "Westminster", Country: "United Kingdom"},
	})
	if got := mustOpenLocation(t, dir, ipLondon); got != "Westminster, United Kingdom" {
		t.Errorf("two City databases: Location = %q, want GeoIP2-City.mmdb's answer", got)
	}
}

func mustOpenLocation(t *testing.T, path string, ip netip.Addr) string {
	t.Helper()
	g, err := OpenGeo(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	return g.Location(ip)
}

// geoLogBuffer collects log output from several goroutines.
type geoLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *geoLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *geoLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newGeoTestLogger() (*slog.Logger, *geoLogBuffer) {
	buf := &geoLogBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func TestGeoRecordThatFailsToDecode(t *testing.T) {
	logger, logs := newGeoTestLogger()
	g, _ := openTestGeo(t, map[string]geotest.Entry{
		"192.0.2.0/24": london,
		// city.names must be a map of strings; here it is a number.
		"198.51.100.0/24": {Raw: mmdbtype.Map{
			"city":    mmdbtype.Map{"names": mmdbtype.Uint32(5)},
			"country": mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Netherlands")}},
		}},
		// country is a string, not a map.
		"203.0.113.0/24": {Raw: mmdbtype.Map{"country": mmdbtype.String("NL")}},
	}, &GeoOptions{Logger: logger})

	for range 3 {
		for _, ip := range []netip.Addr{ipZwolle, ipHague} {
			if got := g.Location(ip); got != "" {
				t.Errorf("Location(%v) = %q for a broken record, want \"\"", ip, got)
			}
			if info, ok := g.LocationInfo(ip); ok || info != (LocationInfo{}) {
				t.Errorf("LocationInfo(%v) = %+v, %v for a broken record", ip, info, ok)
			}
		}
	}
	if got := g.Location(ipLondon); got != "London, United Kingdom" {
		t.Errorf("a healthy record next to broken ones: Location = %q", got)
	}

	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Errorf("%d warnings logged, want exactly 1 (later failures at debug):\n%s", n, out)
	}
	if n := strings.Count(out, "level=DEBUG"); n == 0 {
		t.Errorf("later failures not logged at debug:\n%s", out)
	}
	if !strings.Contains(out, "op=decode") {
		t.Errorf("log does not say the record failed to decode:\n%s", out)
	}
	if strings.Contains(out, ipZwolle.String()) || strings.Contains(out, ipHague.String()) {
		t.Errorf("log contains the looked-up address:\n%s", out)
	}
}

func TestGeoIPv4OnlyDatabase(t *testing.T) {
	logger, logs := newGeoTestLogger()
	data := geotest.BuildWith(t, mmdbwriter.Options{DatabaseType: "GeoIP2-City", IPVersion: 4},
		map[string]geotest.Entry{"192.0.2.0/24": london})
	g, err := OpenGeoBytes(data, &GeoOptions{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got := g.Location(ipLondon); got != "London, United Kingdom" {
		t.Errorf("IPv4 lookup = %q", got)
	}
	if got := g.Location(ipJapan); got != "" {
		t.Errorf("IPv6 lookup in an IPv4 database = %q", got)
	}
	if out := logs.String(); out != "" {
		t.Errorf("an IPv6 address in an IPv4 database is not a failure, but was logged:\n%s", out)
	}
}

func TestOpenGeoBytes(t *testing.T) {
	g, err := OpenGeoBytes(geotest.Build(t, "GeoIP2-City", testCities), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Location(ipLondon); got != "London, United Kingdom" {
		t.Errorf("Location = %q", got)
	}
	if err := g.Reload(); err == nil || errors.Is(err, ErrGeoClosed) {
		t.Errorf("Reload of a bytes database = %v, want a no-file error", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if got := g.Location(ipLondon); got != "" {
		t.Errorf("Location after Close = %q", got)
	}
	if err := g.Reload(); !errors.Is(err, ErrGeoClosed) {
		t.Errorf("Reload after Close = %v, want ErrGeoClosed", err)
	}
	if _, err := OpenGeoBytes([]byte("nope"), nil); !errors.Is(err, ErrGeoInvalid) {
		t.Errorf("OpenGeoBytes(garbage) = %v, want ErrGeoInvalid", err)
	}
}

func TestGeoVerify(t *testing.T) {
	data := geotest.Build(t, "GeoIP2-City", testCities)
	// Turn Zwolle's name, a 6-byte string, into a 6-byte double, as in
	// MaxMind's GeoIP2-City-Test-Broken-Double-Format.mmdb: London's
	// lookups do not read it, the full verification does.
	at := bytes.Index(data, []byte("\x46Zwolle"))
	if at < 0 {
		t.Fatal("no 6-byte string Zwolle in the test database")
	}
	broken := slices.Clone(data)
	broken[at] = 0x66

	path := filepath.Join(t.TempDir(), "GeoIP2-City.mmdb")
	geotest.Write(t, path, broken)
	g, err := OpenGeo(path, &GeoOptions{Logger: discardGeoLogger})
	if err != nil {
		t.Fatalf("without Verify the damage is not looked for, yet OpenGeo = %v", err)
	}
	if got := g.Location(ipLondon); got != "London, United Kingdom" {
		t.Errorf("Location = %q", got)
	}
	if got := g.Location(ipZwolle); got != "" {
		t.Errorf("Location of the damaged record = %q, want \"\"", got)
	}
	g.Close()
	if _, err := OpenGeo(path, &GeoOptions{Verify: true}); !errors.Is(err, ErrGeoInvalid) {
		t.Errorf("OpenGeo with Verify = %v, want ErrGeoInvalid", err)
	}
}

// TestGeoSearchTreeSeparator: the 16 zero bytes that end the search tree
// are checked at every open, Verify or not, since a damaged node count or
// record size would otherwise fail every lookup.
func TestGeoSearchTreeSeparator(t *testing.T) {
	data := geotest.Build(t, "GeoIP2-City", testCities)
	g, err := OpenGeoBytes(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	md := g.current.Load().reader.Metadata
	sep := int(md.NodeCount * md.RecordSize / 4)
	g.Close()
	broken := slices.Clone(data)
	binary.BigEndian.PutUint64(broken[sep:], ^uint64(0))
	if _, err := OpenGeoBytes(broken, nil); !errors.Is(err, ErrGeoInvalid) {
		t.Errorf("OpenGeoBytes with a damaged separator = %v, want ErrGeoInvalid", err)
	}
}

func TestGeoReload(t *testing.T) {
	g, path := openTestGeo(t, testCities, nil)
	writeTestCityDB(t, path, map[string]geotest.Entry{"192.0.2.0/24": {City: "Leeds", Country: "United Kingdom"}})
	if got := g.Location(ipLondon); got != "London, United Kingdom" {
		t.Errorf("before Reload: %q (the old database must stay until Reload)", got)
	}
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := g.Location(ipLondon); got != "Leeds, United Kingdom" {
		t.Errorf("after Reload: %q, want the new database's answer (and not the old cache's)", got)
	}

	// A broken replacement is refused and the current database kept.
	geotest.Write(t, path, []byte("truncated"))
	if err := g.Reload(); !errors.Is(err, ErrGeoInvalid) {
		t.Errorf("Reload(garbage) = %v, want ErrGeoInvalid", err)
	}
	if got := g.Location(ipLondon); got != "Leeds, United Kingdom" {
		t.Errorf("after a failed Reload: %q, want the previous database", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Reload(missing) = %v, want fs.ErrNotExist", err)
	}

	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := g.Reload(); !errors.Is(err, ErrGeoClosed) {
		t.Errorf("Reload after Close = %v, want ErrGeoClosed", err)
	}
	if got := g.Location(ipLondon); got != "" {
		t.Errorf("Location after Close = %q", got)
	}
}

// TestGeoReloadDuringLookups swaps databases while goroutines look up: run
// with -race. Every answer must come from one database or the other; an
// empty one would mean a lookup met a missing or closed reader.
func TestGeoReloadDuringLookups(t *testing.T) {
	dbA := geotest.Build(t, "GeoIP2-City", map[string]geotest.Entry{"192.0.2.0/24": {City: "A", Country: "X"}})
	dbB := geotest.Build(t, "GeoIP2-City", map[string]geotest.Entry{"192.0.2.0/24": {City: "B", Country: "X"}})
	path := filepath.Join(t.TempDir(), "GeoIP2-City.mmdb")
	geotest.Write(t, path, dbA)
	g, err := OpenGeo(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	stop := make(chan struct{})
	bad := make(chan string, 1)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got := g.Location(ipLondon); got != "A, X" && got != "B, X" {
					select {
					case bad <- got:
					default:
					}
					return
				}
			}
		})
	}
	for i := range 20 {
		geotest.Write(t, path, [][]byte{dbB, dbA}[i%2])
		if err := g.Reload(); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case got := <-bad:
		t.Fatalf("lookup during Reload answered %q", got)
	default:
	}
	if got := g.Location(ipLondon); got != "A, X" {
		t.Errorf("after the last Reload: %q, want %q", got, "A, X")
	}
}

func TestGeoWatcher(t *testing.T) {
	logger, logs := newGeoTestLogger()
	dir := t.TempDir()
	path := filepath.Join(dir, "GeoLite2-City.mmdb")
	city := func(name string) map[string]geotest.Entry {
		return map[string]geotest.Entry{"192.0.2.0/24": {City: name, Country: "X"}}
	}
	// Each version has its own size: on a file system with coarse
	// timestamps a reused inode could otherwise look unchanged.
	writeTestCityDB(t, path, city("A"))
	// Watch the directory, as a deployment pointing at /var/lib/GeoIP would.
	g, err := OpenGeo(dir, &GeoOptions{WatchInterval: 5 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	writeTestCityDB(t, path, city("Bb"))
	waitForLocation(t, g, "Bb, X")

	// A broken file is logged once and the current database kept.
	geotest.Write(t, path, []byte("half a database"))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "reload failed") && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "reload failed") {
		t.Fatalf("broken file not reported:\n%s", logs.String())
	}
	time.Sleep(30 * time.Millisecond) // several more polls of the same broken file
	if n := strings.Count(logs.String(), "reload failed"); n != 1 {
		t.Errorf("broken file reported %d times, want once", n)
	}
	if got := g.Location(ipLondon); got != "Bb, X" {
		t.Errorf("with a broken file on disk: %q, want the last good database", got)
	}

	writeTestCityDB(t, path, city("Ccc"))
	waitForLocation(t, g, "Ccc, X")

	// Close stops the watcher (it returns only once the goroutine is gone).
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if got := g.Location(ipLondon); got != "" {
		t.Errorf("after Close: %q", got)
	}
}

func waitForLocation(t *testing.T, g *Geo, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := g.Location(ipLondon)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watcher did not load the new database: Location = %q, want %q", got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestOpenGeoDamaged damages a small database byte by byte, and cuts it
// short at every length: each result must open with a clear error (invalid
// or of the wrong type, never a panic), or open and answer every lookup
// without panicking.
func TestOpenGeoDamaged(t *testing.T) {
	valid := geotest.Build(t, "GeoIP2-City", testCities)
	ips := []netip.Addr{ipLondon, ipZwolle, ipHague, ipJapan, ipUnknown}
	check := func(what string, data []byte, verify bool) {
		t.Helper()
		g, err := OpenGeoBytes(data, &GeoOptions{Verify: verify, Logger: discardGeoLogger})
		if err != nil {
			if g != nil || !errors.Is(err, ErrGeoInvalid) && !errors.Is(err, ErrGeoDatabaseType) {
				t.Errorf("%s: OpenGeoBytes = %v, %v; want nil and ErrGeoInvalid or ErrGeoDatabaseType", what, g, err)
			}
			return
		}
		for _, ip := range ips {
			loc := g.Location(ip)
			if info, ok := g.LocationInfo(ip); loc != info.String() || !ok && loc != "" {
				t.Errorf("%s: Location(%v) = %q, LocationInfo = %#v, %v", what, ip, loc, info, ok)
			}
		}
		g.Close()
	}
	for i := range valid {
		data := slices.Clone(valid)
		data[i] ^= 0xff
		check(fmt.Sprintf("byte %d inverted", i), data, i%2 == 0)
	}
	for n := range len(valid) {
		if _, err := OpenGeoBytes(valid[:n], nil); !errors.Is(err, ErrGeoInvalid) {
			t.Errorf("cut to %d of %d bytes: OpenGeoBytes = %v, want ErrGeoInvalid", n, len(valid), err)
		}
	}

	// A node count larger than the file's search tree, as in MaxMind's
	// GeoIP2-City-Test-Invalid-Node-Count.mmdb: a uint32 follows the key.
	key := []byte("node_count")
	at := bytes.LastIndex(valid, key)
	if at < 0 || valid[at+len(key)]>>5 != 6 {
		t.Fatalf("no uint32 node_count in the metadata")
	}
	data := slices.Clone(valid)
	for i := range int(valid[at+len(key)] & 0x1f) {
		data[at+len(key)+1+i] = 0xff
	}
	path := filepath.Join(t.TempDir(), "GeoIP2-City.mmdb")
	geotest.Write(t, path, data)
	if _, err := OpenGeo(path, nil); !errors.Is(err, ErrGeoInvalid) || !strings.Contains(err.Error(), path) {
		t.Errorf("node count too large: OpenGeo = %v, want ErrGeoInvalid naming the file", err)
	}
}

var locationSink string

func BenchmarkLocation(b *testing.B) {
	g, _ := openTestGeo(b, testCities, nil)
	ips := []netip.Addr{ipLondon, ipZwolle, ipHague, ipJapan}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			locationSink = g.Location(ips[i%len(ips)])
			i++
		}
	})
	// decode measures a first lookup of a record: tree walk plus decoding,
	// without the cache.
	b.Run("decode", func(b *testing.B) {
		db := g.current.Load()
		b.ReportAllocs()
		for b.Loop() {
			a, err := db.decode(db.reader.Lookup(ipLondon))
			if err != nil {
				b.Fatal(err)
			}
			locationSink = a.label
		}
	})
	b.Run("private", func(b *testing.B) {
		ip := netip.MustParseAddr("192.168.1.1")
		b.ReportAllocs()
		for b.Loop() {
			locationSink = g.Location(ip)
		}
	})
}

// TestGeoLanguagesUndeclared matches preferences against the languages the
// records hold, whatever the metadata lists: MaxMind's own City test
// database declares "en" and "zh" while its records name "zh-CN".
func TestGeoLanguagesUndeclared(t *testing.T) {
	entries := maps2(testCities, map[string]geotest.Entry{
		// Lisbon has a European and a Brazilian Portuguese name, and a bare
		// "zh" one next to "zh-TW".
		"198.18.1.0/24": {City: "Lisbon", Country: "Portugal", CountryCode: "PT",
			CityNames:    map[string]string{"pt-PT": "Lisboa (PT)", "pt-BR": "Lisboa (BR)", "zh": "里斯本", "zh-TW": "里斯本 (TW)"},
			CountryNames: map[string]string{"pt": "Portugal (pt)", "pt-BR": "Portugal (BR)"}},
		// Names only in regional English and in undeclared languages.
		"198.18.2.0/24": {CityNames: map[string]string{"fr": "Lyon", "en-GB": "Lyons"},
			CountryNames: map[string]string{"fr": "France", "de": "Frankreich"}},
	})
	for _, declared := range [][]string{{"en", "zh"}, {"en"}, {"en", "de", "nl", "pt-BR", "zh-CN"}} {
		data := geotest.BuildWith(t, mmdbwriter.Options{DatabaseType: "GeoIP2-City", Languages: declared}, entries)
		cases := []struct {
			langs []string
			ip    netip.Addr
			want  string
		}{
			{[]string{"zh"}, ipHague, "海牙, 荷兰"},                                                  // base language finds zh-CN
			{[]string{"pt"}, ipHague, "Haia, Países Baixos"},                                     // and pt-BR
			{[]string{"ZH-cn"}, ipHague, "海牙, 荷兰"},                                               // case ignored
			{[]string{"zh-Hans-CN"}, ipHague, "海牙, 荷兰"},                                          // same tag, other spelling
			{[]string{"pt-PT"}, ipHague, "Haia, Países Baixos"},                                  // regional fallback
			{[]string{"pt-PT"}, netip.MustParseAddr("198.18.1.1"), "Lisboa (PT), Portugal (pt)"}, // exact first; then the bare language
			{[]string{"pt-BR"}, netip.MustParseAddr("198.18.1.1"), "Lisboa (BR), Portugal (BR)"},
			{[]string{"zh-CN"}, netip.MustParseAddr("198.18.1.1"), "里斯本, Portugal"},      // bare zh before zh-TW; country: English
			{[]string{"zh-HK"}, netip.MustParseAddr("198.18.1.1"), "里斯本 (TW), Portugal"}, // same script (Hant) first
			{[]string{"xx-invalid-tag!"}, ipHague, "The Hague, Netherlands"},             // unparsable: English
			{[]string{"nl"}, netip.MustParseAddr("198.18.2.1"), "Lyons, Frankreich"},     // English's regions; then any, in key order
			{nil, netip.MustParseAddr("198.18.2.1"), "Lyons, Frankreich"},
		}
		for _, c := range cases {
			g, err := OpenGeoBytes(data, &GeoOptions{Languages: c.langs})
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Location(c.ip); got != c.want {
				t.Errorf("metadata languages %q, Languages %q: Location(%v) = %q, want %q", declared, c.langs, c.ip, got, c.want)
			}
			g.Close()
		}
	}
}

// TestOpenGeoDirectoryCountryFallback: with a City and a Country database in
// one directory, what the City database does not know comes from the
// Country one.
func TestOpenGeoDirectoryCountryFallback(t *testing.T) {
	dir := t.TempDir()
	writeTestCityDB(t, filepath.Join(dir, "GeoLite2-City.mmdb"), map[string]geotest.Entry{
		"192.0.2.0/24": london,
		// A City record naming a city but no country.
		"198.51.100.0/24": {City: "Zwolle", TimeZone: "Europe/Amsterdam"},
		// A City record that fails to decode.
		"203.0.113.0/24": {Raw: mmdbtype.Map{"country": mmdbtype.String("NL")}},
	})
	writeTestCountryDB(t, filepath.Join(dir, "GeoLite2-Country.mmdb"), map[string]geotest.Entry{
		"192.0.2.0/24":    {Country: "Elsewhere", CountryCode: "XX"},
		"198.51.100.0/24": {Country: "Netherlands", CountryCode: "NL", Continent: "Europe", ContinentCode: "EU"},
		"203.0.113.0/24":  {Country: "Netherlands", CountryCode: "NL"},
		"2001:db8::/32": {Country: "Japan", CountryCode: "JP", Continent: "Asia", ContinentCode: "AS",
			CountryNames: map[string]string{"zh-CN": "日本"}},
	})
	g, err := OpenGeo(dir, &GeoOptions{Languages: []string{"zh"}, Logger: discardGeoLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	cases := []struct {
		ip   netip.Addr
		want string
	}{
		{ipLondon, "London, United Kingdom"}, // the City database wins
		{ipJapan, "日本"},                      // only the Country database knows it
		{ipZwolle, "Zwolle, Netherlands"},    // the country comes from the Country database
		{ipHague, "Netherlands"},             // the City record is unreadable
		{ipUnknown, ""},
	}
	for _, c := range cases {
		if got := g.Location(c.ip); got != c.want {
			t.Errorf("Location(%v) = %q, want %q", c.ip, got, c.want)
		}
	}
	want := LocationInfo{City: "Zwolle", Country: "Netherlands", CountryCode: "NL",
		Continent: "Europe", ContinentCode: "EU", TimeZone: "Europe/Amsterdam"}
	if info, ok := g.LocationInfo(ipZwolle); !ok || info != want {
		t.Errorf("LocationInfo(%v) = %#v, %v; want %#v, true", ipZwolle, info, ok, want)
	}
	want = LocationInfo{Country: "日本", CountryCode: "JP", Continent: "Asia", ContinentCode: "AS"}
	if info, ok := g.LocationInfo(ipJapan); !ok || info != want {
		t.Errorf("LocationInfo(%v) = %#v, %v; want %#v, true", ipJapan, info, ok, want)
	}

	// Reload reads both files again.
	writeTestCountryDB(t, filepath.Join(dir, "GeoLite2-Country.mmdb"), map[string]geotest.Entry{
		"2001:db8::/32": {Country: "Nippon", CountryCode: "JP"},
	})
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := g.Location(ipJapan); got != "Nippon" {
		t.Errorf("after Reload: Location(%v) = %q, want the new Country database's answer", ipJapan, got)
	}
	// A broken Country database fails the reload and keeps both old ones.
	geotest.Write(t, filepath.Join(dir, "GeoLite2-Country.mmdb"), []byte("broken"))
	if err := g.Reload(); !errors.Is(err, ErrGeoInvalid) || !strings.Contains(err.Error(), "GeoLite2-Country.mmdb") {
		t.Errorf("Reload with a broken Country database = %v, want ErrGeoInvalid naming the file", err)
	}
	if got := g.Location(ipJapan); got != "Nippon" {
		t.Errorf("after a failed Reload: Location(%v) = %q, want the previous answer", ipJapan, got)
	}
}

// TestGeoWatcherCountryFallback: the watcher also reloads when only the
// Country database of a directory changes.
func TestGeoWatcherCountryFallback(t *testing.T) {
	dir := t.TempDir()
	writeTestCityDB(t, filepath.Join(dir, "GeoLite2-City.mmdb"), map[string]geotest.Entry{"192.0.2.0/24": london})
	country := filepath.Join(dir, "GeoLite2-Country.mmdb")
	writeTestCountryDB(t, country, map[string]geotest.Entry{"2001:db8::/32": {Country: "A"}})
	g, err := OpenGeo(dir, &GeoOptions{WatchInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got := g.Location(ipJapan); got != "A" {
		t.Fatalf("Location(%v) = %q, want %q", ipJapan, got, "A")
	}
	writeTestCountryDB(t, country, map[string]geotest.Entry{"2001:db8::/32": {Country: "Bb"}})
	deadline := time.Now().Add(5 * time.Second)
	for g.Location(ipJapan) != "Bb" && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if got := g.Location(ipJapan); got != "Bb" {
		t.Errorf("watcher did not reload the Country database: Location = %q", got)
	}
	if got := g.Location(ipLondon); got != "London, United Kingdom" {
		t.Errorf("after the watcher's reload: Location(%v) = %q", ipLondon, got)
	}
}

// TestGeoEmbeddedIPv4 covers the IPv6 forms of IPv4 addresses that
// MaxMind's databases alias to their IPv4 records: IPv4-compatible
// (::a.b.c.d), 6to4 (2002:AABB:CCDD::/48) and Teredo (server address in
// bits 32-63). They answer as the IPv4 address would, in every kind of
// database, and never for an address that is not public.
func TestGeoEmbeddedIPv4(t *testing.T) {
	reserved := geotest.Entry{City: "Nowhere", Country: "Reserved"}
	entries := map[string]geotest.Entry{
		"192.0.2.0/24": london,
		"10.0.0.0/8":   reserved, "127.0.0.0/8": reserved, "0.0.0.0/8": reserved,
		"240.0.0.0/4": reserved, "100.64.0.0/10": reserved,
	}
	public := []string{"::192.0.2.10", "2002:c000:20a::1", "2002:c000:20a:1::1", "2001:0:c000:20a::1"}
	private := []string{
		"::10.1.2.3", "2002:a01:203::1", "2001:0:a01:203::1", "::127.0.0.1", "2002:7f00:1::1",
		"::100.64.0.1", "0.1.2.3", "::ffff:0.1.2.3", "240.1.2.3", "255.255.255.255",
	}
	for _, c := range []struct {
		name string
		opts mmdbwriter.Options
	}{
		{"IPv6 database", mmdbwriter.Options{DatabaseType: "GeoIP2-City"}},
		{"IPv6 database without aliases", mmdbwriter.Options{DatabaseType: "GeoIP2-City", DisableIPv4Aliasing: true}},
		{"IPv4 database", mmdbwriter.Options{DatabaseType: "GeoIP2-City", IPVersion: 4}},
	} {
		g, err := OpenGeoBytes(geotest.BuildWith(t, c.opts, entries), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range public {
			if got := g.Location(netip.MustParseAddr(s)); got != "London, United Kingdom" {
				t.Errorf("%s: Location(%s) = %q, want London's answer", c.name, s, got)
			}
		}
		for _, s := range private {
			ip := netip.MustParseAddr(s)
			if got := g.Location(ip); got != "" {
				t.Errorf("%s: Location(%s) = %q, want \"\"", c.name, s, got)
			}
			if _, ok := g.LocationInfo(ip); ok {
				t.Errorf("%s: LocationInfo(%s) found a record", c.name, s)
			}
		}
		g.Close()
	}
}
