package geoupdate_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/geoupdate"
	"github.com/usersessions/usersessions/internal/geotest"
)

const (
	testEdition    = "GeoLite2-City"
	testLicenseKey = "s3cr3t-LICENSE_key"
)

// testCities is the database the fake server hands out.
var testCities = map[string]geotest.Entry{
	"192.0.2.0/24": {City: "London", Country: "United Kingdom", CountryCode: "GB"},
}

// fakeMaxMind serves archive for testEdition and testLicenseKey.
func fakeMaxMind(archive []byte) *geotest.MaxMind {
	return &geotest.MaxMind{Edition: testEdition, LicenseKey: testLicenseKey, Archive: archive}
}

// maxMindArchive is a well-formed archive holding db.
func maxMindArchive(t *testing.T, db []byte) []byte {
	t.Helper()
	return geotest.Archive(t, geotest.EditionFiles(testEdition, db)...)
}

// dirWithOldDB returns a directory holding an old database file, and that
// file's path and content.
func dirWithOldDB(t *testing.T) (dir, file string, old []byte) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, testEdition+".mmdb")
	old = geotest.Build(t, "GeoLite2-City", map[string]geotest.Entry{"192.0.2.0/24": {City: "Old", Country: "X"}})
	if err := os.WriteFile(file, old, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file, old
}

// assertOnlyOldDB checks that a failed download left the old file as it was
// and no temporary file behind.
func assertOnlyOldDB(t *testing.T, dir, file string, old []byte) {
	t.Helper()
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, old) {
		t.Error("the old database was changed")
	}
	assertDirHolds(t, dir, filepath.Base(file))
}

func assertDirHolds(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		t.Errorf("directory holds %q, want %q (temporary files left behind?)", got, names)
	}
}

func TestDownload(t *testing.T) {
	dir, file, _ := dirWithOldDB(t)
	newDB := geotest.Build(t, "GeoLite2-City", testCities)
	srv := fakeMaxMind(maxMindArchive(t, newDB))
	base := srv.Start(t)

	var calls, last, lastTotal int64
	progress := func(done, total int64) {
		if done < last {
			t.Errorf("progress went back from %d to %d", last, done)
		}
		calls++
		last, lastTotal = done, total
	}
	got, err := geoupdate.Download(context.Background(), testLicenseKey, testEdition, dir,
		&geoupdate.Options{BaseURL: base, Progress: progress, HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	if got != file {
		t.Errorf("Download = %q, want %q", got, file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, newDB) {
		t.Error("the file does not hold the database from the archive")
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("file mode = %v, %v; want 0644", fi.Mode().Perm(), err)
	}
	assertDirHolds(t, dir, testEdition+".mmdb")
	if n := int64(len(srv.Archive)); calls == 0 || last != n || lastTotal != n {
		t.Errorf("progress: %d calls, last (%d, %d), want last (%d, %d)", calls, last, lastTotal, n, n)
	}

	g, err := usersessions.OpenGeo(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if loc := g.Location(netip.MustParseAddr("192.0.2.10")); loc != "London, United Kingdom" {
		t.Errorf("Location from the downloaded database = %q", loc)
	}
}

func TestDownloadIntoNewDirectory(t *testing.T) {
	srv := fakeMaxMind(maxMindArchive(t, geotest.Build(t, "GeoLite2-City", testCities)))
	dir := filepath.Join(t.TempDir(), "var", "GeoIP")
	got, err := geoupdate.Download(context.Background(), testLicenseKey, testEdition, dir, &geoupdate.Options{BaseURL: srv.Start(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(got); err != nil {
		t.Error(err)
	}
}

// TestDownloadOtherEdition checks that an edition Geo cannot show (an ASN
// database) is still installed when it is a valid MaxMind DB.
func TestDownloadOtherEdition(t *testing.T) {
	const edition = "GeoLite2-ASN"
	asn := geotest.Build(t, edition, testCities)
	srv := &geotest.MaxMind{Edition: edition, LicenseKey: testLicenseKey, Archive: geotest.Archive(t, geotest.EditionFiles(edition, asn)...)}
	dir := t.TempDir()
	got, err := geoupdate.Download(context.Background(), testLicenseKey, edition, dir, &geoupdate.Options{BaseURL: srv.Start(t)})
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(got); err != nil || !bytes.Equal(data, asn) {
		t.Errorf("installed %s: %v", got, err)
	}
}

// TestDownloadFailures checks that every failure is reported as such,
// names no license key, and leaves the old database and nothing else.
func TestDownloadFailures(t *testing.T) {
	validDB := geotest.Build(t, "GeoLite2-City", testCities)
	good := maxMindArchive(t, validDB)
	damaged := bytes.Clone(validDB)
	copy(damaged[len(damaged)/3:], bytes.Repeat([]byte{0xff}, 64))
	cases := []struct {
		name    string
		srv     *geotest.MaxMind
		key     string
		opts    geoupdate.Options
		want    error
		wantMsg string
	}{
		{name: "bad checksum", srv: &geotest.MaxMind{Archive: good, Checksum: strings.Repeat("ab", 32) + "  x.tar.gz\n"}, want: geoupdate.ErrChecksum},
		{name: "malformed checksum file", srv: &geotest.MaxMind{Archive: good, Checksum: "<html>oops</html>"}, want: geoupdate.ErrChecksum},
		{name: "truncated archive", srv: fakeMaxMind(good[:len(good)/2]), want: geoupdate.ErrArchive},
		{name: "not gzip", srv: fakeMaxMind([]byte("PK\x03\x04 a zip file")), want: geoupdate.ErrArchive},
		{name: "no mmdb in archive", srv: fakeMaxMind(geotest.Archive(t,
			geotest.File{Name: testEdition + "_20240102/README.txt", Data: []byte("hi")},
			geotest.File{Name: testEdition + "_20240102/GeoLite2-Country.mmdb", Data: validDB})), want: geoupdate.ErrArchive, wantMsg: "no GeoLite2-City.mmdb"},
		{name: "path escaping the directory", srv: fakeMaxMind(geotest.Archive(t,
			geotest.File{Name: "../" + testEdition + ".mmdb", Data: validDB})), want: geoupdate.ErrArchive, wantMsg: "unsafe path"},
		{name: "absolute path", srv: fakeMaxMind(geotest.Archive(t,
			geotest.File{Name: "/tmp/" + testEdition + ".mmdb", Data: validDB})), want: geoupdate.ErrArchive, wantMsg: "unsafe path"},
		{name: "mmdb is garbage", srv: fakeMaxMind(maxMindArchive(t, []byte("not a database"))), want: usersessions.ErrGeoInvalid},
		{name: "mmdb is damaged", srv: fakeMaxMind(maxMindArchive(t, damaged)), want: usersessions.ErrGeoInvalid},
		{name: "mmdb over the size limit", srv: fakeMaxMind(maxMindArchive(t, validDB)),
			opts: geoupdate.Options{MaxBytes: int64(len(good)) + 10}, want: geoupdate.ErrArchive, wantMsg: "exceeds the limit"},
		{name: "archive over the size limit", srv: fakeMaxMind(good),
			opts: geoupdate.Options{MaxBytes: 100}, want: geoupdate.ErrArchive, wantMsg: "exceeds the limit"},
		{name: "wrong license key", srv: fakeMaxMind(good), key: "wrong-key-123", want: geoupdate.ErrUnauthorized, wantMsg: "Invalid license key"},
		{name: "edition refused", srv: &geotest.MaxMind{Archive: good, Status: http.StatusForbidden}, want: geoupdate.ErrUnauthorized, wantMsg: "403"},
		{name: "server error", srv: &geotest.MaxMind{Archive: good, Status: http.StatusServiceUnavailable}, wantMsg: "503"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.srv.Edition, c.srv.LicenseKey = testEdition, testLicenseKey
			dir, file, old := dirWithOldDB(t)
			key := c.key
			if key == "" {
				key = testLicenseKey
			}
			opts := c.opts
			opts.BaseURL = c.srv.Start(t)
			got, err := geoupdate.Download(context.Background(), key, testEdition, dir, &opts)
			if err == nil {
				t.Fatalf("Download = %q, nil; want an error", got)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.wantMsg) {
				t.Errorf("error = %v, want it to mention %q", err, c.wantMsg)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error reveals the license key: %v", err)
			}
			assertOnlyOldDB(t, dir, file, old)
			if c.name == "path escaping the directory" {
				if _, err := os.Stat(filepath.Join(filepath.Dir(dir), testEdition+".mmdb")); err == nil {
					t.Error("a file was written outside the directory")
				}
			}
		})
	}
}

func TestDownloadNetworkErrorHidesKey(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	dir, file, old := dirWithOldDB(t)
	_, err := geoupdate.Download(context.Background(), testLicenseKey, testEdition, dir, &geoupdate.Options{BaseURL: base})
	if err == nil {
		t.Fatal("download from a closed server succeeded")
	}
	if strings.Contains(err.Error(), testLicenseKey) || strings.Contains(err.Error(), "license_key") {
		t.Errorf("error reveals the request URL: %v", err)
	}
	assertOnlyOldDB(t, dir, file, old)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	live := fakeMaxMind([]byte("x"))
	if _, err := geoupdate.Download(ctx, testLicenseKey, testEdition, dir, &geoupdate.Options{BaseURL: live.Start(t)}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled download: error = %v, want context.Canceled", err)
	}
	assertOnlyOldDB(t, dir, file, old)
}

func TestDownloadRejectsArgumentsBeforeAnyRequest(t *testing.T) {
	srv := fakeMaxMind(nil)
	base := srv.Start(t)
	dir := t.TempDir()
	for _, c := range []struct {
		key, edition, dir string
		opts              geoupdate.Options
	}{
		{key: testLicenseKey, edition: "../../etc/passwd", dir: dir},
		{key: testLicenseKey, edition: "GeoLite2-City.mmdb", dir: dir},
		{key: testLicenseKey, edition: "", dir: dir},
		{key: testLicenseKey, edition: "-rf", dir: dir},
		{key: "", edition: testEdition, dir: dir},
		{key: testLicenseKey, edition: testEdition, dir: ""},
		{key: testLicenseKey, edition: testEdition, dir: dir, opts: geoupdate.Options{MaxBytes: -1}},
	} {
		c.opts.BaseURL = base
		if _, err := geoupdate.Download(context.Background(), c.key, c.edition, c.dir, &c.opts); err == nil {
			t.Errorf("Download(key %q, edition %q, dir %q, MaxBytes %d) succeeded", c.key, c.edition, c.dir, c.opts.MaxBytes)
		}
	}
	if n := srv.Requests(); n != 0 {
		t.Errorf("%d requests made with invalid arguments", n)
	}
	assertDirHolds(t, dir)
}

// TestDownloadZeroOptions checks that nil and zero Options mean the
// defaults: DefaultURL, http.DefaultClient and DefaultMaxBytes. The default
// client is pointed at the fake server through its transport, as no test
// may reach MaxMind.
func TestDownloadZeroOptions(t *testing.T) {
	srv := fakeMaxMind(maxMindArchive(t, geotest.Build(t, "GeoLite2-City", testCities)))
	base := srv.Start(t)
	saved := http.DefaultTransport
	t.Cleanup(func() { http.DefaultTransport = saved })
	var hosts []string
	http.DefaultTransport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		hosts = append(hosts, r.URL.Scheme+"://"+r.URL.Host+r.URL.Path)
		r = r.Clone(r.Context())
		u := *r.URL
		r.URL = &u
		r.URL.Scheme, r.URL.Host = "http", strings.TrimPrefix(strings.TrimSuffix(base, "/app/geoip_download"), "http://")
		return saved.RoundTrip(r)
	})
	for _, opts := range []*geoupdate.Options{nil, {}} {
		if _, err := geoupdate.Download(context.Background(), testLicenseKey, testEdition, t.TempDir(), opts); err != nil {
			t.Fatalf("Download with %v options: %v", opts, err)
		}
	}
	if len(hosts) != 4 || hosts[0] != geoupdate.DefaultURL || hosts[3] != geoupdate.DefaultURL {
		t.Errorf("requests went to %q, want %s", hosts, geoupdate.DefaultURL)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
