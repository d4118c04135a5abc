package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersessions/usersessions/internal/geotest"
)

// geoServer serves MaxMind's download endpoint for the key "good-key": the
// GeoLite2-City edition holding mmdb. It returns the URL for -base-url.
func geoServer(t *testing.T, mmdb []byte) string {
	t.Helper()
	const edition = "GeoLite2-City"
	srv := &geotest.MaxMind{Edition: edition, LicenseKey: "good-key", Archive: geotest.Archive(t, geotest.EditionFiles(edition, mmdb)...)}
	return srv.Start(t)
}

func TestGeoIPDownload(t *testing.T) {
	mmdb := testMMDB(t)
	base := geoServer(t, mmdb)
	dir := filepath.Join(t.TempDir(), "geo")

	// The key comes from the environment.
	t.Setenv(licenseKeyEnv, "good-key")
	stdout, stderr, code := runCmd(t, "geoip", "download", "-dir", dir, "-base-url", base)
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
	_, stderr, code = runCmd(t, "geoip", "download", "-key", "bad-secret", "-dir", dir, "-base-url", base)
	if code != exitError || !strings.Contains(stderr, "refused") || strings.Contains(stderr, "bad-secret") {
		t.Errorf("bad key: status %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCmd(t, "geoip", "download", "-edition", "GeoLite2-ASN", "-dir", dir, "-base-url", base)
	if code != exitError || !strings.Contains(stderr, "404") {
		t.Errorf("unknown edition: status %d, stderr %q", code, stderr)
	}
}
