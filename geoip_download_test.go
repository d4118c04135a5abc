package usersessions

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/usersessions/usersessions/internal/geotest"
)

const (
	testEdition    = "GeoLite2-City"
	testLicenseKey = "s3cr3t-LICENSE_key"
)

// fakeMaxMind serves one edition the way download.maxmind.com does:
// ?edition_id=E&license_key=K&suffix=tar.gz for the archive and
// suffix=tar.gz.sha256 for "<hex>  <file name>".
type fakeMaxMind struct {
	archive  []byte
	checksum string // default: the archive's real SHA-256 line
	status   int    // when set, every request gets it
	requests atomic.Int32
}

func (f *fakeMaxMind) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	q := r.URL.Query()
	switch {
	case f.status != 0:
		http.Error(w, "Service unavailable", f.status)
	case q.Get("license_key") != testLicenseKey:
		http.Error(w, "Invalid license key", http.StatusUnauthorized)
	case q.Get("edition_id") != testEdition:
		http.Error(w, "Invalid product ID or subscription expired", http.StatusForbidden)
	case q.Get("suffix") == "tar.gz":
		w.Write(f.archive)
	case q.Get("suffix") == "tar.gz.sha256":
		sum := f.checksum
		if sum == "" {
			h := sha256.Sum256(f.archive)
			sum = hex.EncodeToString(h[:]) + "  " + testEdition + "_20240102.tar.gz\n"
		}
		w.Write([]byte(sum))
	default:
		http.Error(w, "bad suffix", http.StatusBadRequest)
	}
}

func (f *fakeMaxMind) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL + "/app/geoip_download"
}

type tarFile struct {
	name string
	data []byte
}

// makeArchive builds a tar.gz like MaxMind's, from the files given in order.
func makeArchive(t *testing.T, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// maxMindArchive is a well-formed archive holding db.
func maxMindArchive(t *testing.T, db []byte) []byte {
	t.Helper()
	return makeArchive(t,
		tarFile{testEdition + "_20240102/COPYRIGHT.txt", []byte("Database and Contents Copyright (c) MaxMind, Inc.")},
		tarFile{testEdition + "_20240102/LICENSE.txt", []byte("licence text")},
		tarFile{testEdition + "_20240102/" + testEdition + ".mmdb", db},
	)
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

func TestDownloadGeoIP(t *testing.T) {
	dir, file, _ := dirWithOldDB(t)
	newDB := geotest.Build(t, "GeoLite2-City", testCities)
	srv := &fakeMaxMind{archive: maxMindArchive(t, newDB)}
	base := srv.start(t)

	var calls, last, lastTotal int64
	progress := func(done, total int64) {
		if done < last {
			t.Errorf("progress went back from %d to %d", last, done)
		}
		calls++
		last, lastTotal = done, total
	}
	got, err := DownloadGeoIP(context.Background(), testLicenseKey, testEdition, dir,
		DownloadBaseURL(base), DownloadProgress(progress), DownloadHTTPClient(&http.Client{}))
	if err != nil {
		t.Fatal(err)
	}
	if got != file {
		t.Errorf("DownloadGeoIP = %q, want %q", got, file)
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
	if n := int64(len(srv.archive)); calls == 0 || last != n || lastTotal != n {
		t.Errorf("progress: %d calls, last (%d, %d), want last (%d, %d)", calls, last, lastTotal, n, n)
	}

	g, err := OpenGeo(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if loc := g.Location(ipLondon); loc != "London, United Kingdom" {
		t.Errorf("Location from the downloaded database = %q", loc)
	}
}

func TestDownloadGeoIPIntoNewDirectory(t *testing.T) {
	srv := &fakeMaxMind{archive: maxMindArchive(t, geotest.Build(t, "GeoLite2-City", testCities))}
	dir := filepath.Join(t.TempDir(), "var", "GeoIP")
	got, err := DownloadGeoIP(context.Background(), testLicenseKey, testEdition, dir, DownloadBaseURL(srv.start(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(got); err != nil {
		t.Error(err)
	}
}

// TestDownloadGeoIPFailures checks that every failure is reported as such,
// names no license key, and leaves the old database and nothing else.
func TestDownloadGeoIPFailures(t *testing.T) {
	validDB := geotest.Build(t, "GeoLite2-City", testCities)
	good := maxMindArchive(t, validDB)
	cases := []struct {
		name    string
		srv     *fakeMaxMind
		key     string
		opts    []DownloadOption
		want    error
		wantMsg string
	}{
		{name: "bad checksum", srv: &fakeMaxMind{archive: good, checksum: strings.Repeat("ab", 32) + "  x.tar.gz\n"}, want: ErrGeoChecksum},
		{name: "malformed checksum file", srv: &fakeMaxMind{archive: good, checksum: "<html>oops</html>"}, want: ErrGeoChecksum},
		{name: "truncated archive", srv: &fakeMaxMind{archive: good[:len(good)/2]}, want: ErrGeoArchive},
		{name: "not gzip", srv: &fakeMaxMind{archive: []byte("PK\x03\x04 a zip file")}, want: ErrGeoArchive},
		{name: "no mmdb in archive", srv: &fakeMaxMind{archive: makeArchive(t,
			tarFile{testEdition + "_20240102/README.txt", []byte("hi")},
			tarFile{testEdition + "_20240102/GeoLite2-Country.mmdb", validDB})}, want: ErrGeoArchive, wantMsg: "no GeoLite2-City.mmdb"},
		{name: "path escaping the directory", srv: &fakeMaxMind{archive: makeArchive(t,
			tarFile{"../" + testEdition + ".mmdb", validDB})}, want: ErrGeoArchive, wantMsg: "unsafe path"},
		{name: "absolute path", srv: &fakeMaxMind{archive: makeArchive(t,
			tarFile{"/tmp/" + testEdition + ".mmdb", validDB})}, want: ErrGeoArchive, wantMsg: "unsafe path"},
		{name: "mmdb is garbage", srv: &fakeMaxMind{archive: maxMindArchive(t, []byte("not a database"))}, want: ErrGeoInvalid},
		{name: "mmdb over the size limit", srv: &fakeMaxMind{archive: maxMindArchive(t, validDB)},
			opts: []DownloadOption{DownloadMaxBytes(int64(len(good)) + 10)}, want: ErrGeoArchive, wantMsg: "exceeds the limit"},
		{name: "archive over the size limit", srv: &fakeMaxMind{archive: good},
			opts: []DownloadOption{DownloadMaxBytes(100)}, want: ErrGeoArchive, wantMsg: "exceeds the limit"},
		{name: "wrong license key", srv: &fakeMaxMind{archive: good}, key: "wrong-key-123", want: ErrGeoUnauthorized, wantMsg: "Invalid license key"},
		{name: "server error", srv: &fakeMaxMind{archive: good, status: http.StatusServiceUnavailable}, wantMsg: "503"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, file, old := dirWithOldDB(t)
			key := c.key
			if key == "" {
				key = testLicenseKey
			}
			opts := append([]DownloadOption{DownloadBaseURL(c.srv.start(t))}, c.opts...)
			got, err := DownloadGeoIP(context.Background(), key, testEdition, dir, opts...)
			if err == nil {
				t.Fatalf("DownloadGeoIP = %q, nil; want an error", got)
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

func TestDownloadGeoIPNetworkErrorHidesKey(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	dir, file, old := dirWithOldDB(t)
	_, err := DownloadGeoIP(context.Background(), testLicenseKey, testEdition, dir, DownloadBaseURL(base))
	if err == nil {
		t.Fatal("download from a closed server succeeded")
	}
	if strings.Contains(err.Error(), testLicenseKey) || strings.Contains(err.Error(), "license_key") {
		t.Errorf("error reveals the request URL: %v", err)
	}
	assertOnlyOldDB(t, dir, file, old)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	live := &fakeMaxMind{archive: []byte("x")}
	if _, err := DownloadGeoIP(ctx, testLicenseKey, testEdition, dir, DownloadBaseURL(live.start(t))); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled download: error = %v, want context.Canceled", err)
	}
	assertOnlyOldDB(t, dir, file, old)
}

func TestDownloadGeoIPRejectsArgumentsBeforeAnyRequest(t *testing.T) {
	srv := &fakeMaxMind{}
	base := srv.start(t)
	dir := t.TempDir()
	for _, c := range []struct{ key, edition, dir string }{
		{testLicenseKey, "../../etc/passwd", dir},
		{testLicenseKey, "GeoLite2-City.mmdb", dir},
		{testLicenseKey, "", dir},
		{testLicenseKey, "-rf", dir},
		{"", testEdition, dir},
		{testLicenseKey, testEdition, ""},
	} {
		if _, err := DownloadGeoIP(context.Background(), c.key, c.edition, c.dir, DownloadBaseURL(base)); err == nil {
			t.Errorf("DownloadGeoIP(key %q, edition %q, dir %q) succeeded", c.key, c.edition, c.dir)
		}
	}
	if n := srv.requests.Load(); n != 0 {
		t.Errorf("%d requests made with invalid arguments", n)
	}
	assertDirHolds(t, dir)
}
