package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// geoServer serves MaxMind's download endpoint for the key "good-key": a
// tar.gz holding GeoLite2-City_20250101/GeoLite2-City.mmdb, and its SHA-256.
func geoServer(t *testing.T, mmdb []byte) *httptest.Server {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "GeoLite2-City_20250101/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "GeoLite2-City_20250101/GeoLite2-City.mmdb", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(mmdb))})
	tw.Write(mmdb)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	archive := buf.Bytes()
	sum := sha256.Sum256(archive)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("license_key") != "good-key" {
			http.Error(w, "Invalid license key", http.StatusUnauthorized)
			return
		}
		if q.Get("edition_id") != "GeoLite2-City" {
			http.NotFound(w, r)
			return
		}
		switch q.Get("suffix") {
		case "tar.gz":
			w.Write(archive)
		case "tar.gz.sha256":
			w.Write([]byte(hex.EncodeToString(sum[:]) + "  GeoLite2-City_20250101.tar.gz\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestGeoIPDownload(t *testing.T) {
	mmdb := testMMDB(t)
	srv := geoServer(t, mmdb)
	dir := filepath.Join(t.TempDir(), "geo")

	// The key comes from the environment.
	t.Setenv(licenseKeyEnv, "good-key")
	stdout, stderr, code := runCmd(t, "geoip", "download", "-dir", dir, "-base-url", srv.URL)
	want := filepath.Join(dir, "GeoLite2-City.mmdb")
	if code != exitOK || stdout != want+"\n" || stderr != "" {
		t.Fatalf("geoip download: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if got, err := os.ReadFile(want); err != nil || !bytes.Equal(got, mmdb) {
		t.Errorf("installed file: %v", err)
	}
	// The downloaded file works for ls -geoip.
	sd := seedDB(t)
	if stdout, _, _ := runCmd(t, "ls", "-db", sd.path, "-geoip", dir); !strings.Contains(stdout, "Berlin, Germany") {
		t.Errorf("ls -geoip with the downloaded folder:\n%s", stdout)
	}

	// -key wins over the environment; a refused key is an error that does
	// not repeat the key.
	_, stderr, code = runCmd(t, "geoip", "download", "-key", "bad-secret", "-dir", dir, "-base-url", srv.URL)
	if code != exitError || !strings.Contains(stderr, "refused") || strings.Contains(stderr, "bad-secret") {
		t.Errorf("bad key: status %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCmd(t, "geoip", "download", "-edition", "GeoLite2-ASN", "-dir", dir, "-base-url", srv.URL)
	if code != exitError || !strings.Contains(stderr, "404") {
		t.Errorf("unknown edition: status %d, stderr %q", code, stderr)
	}
}
