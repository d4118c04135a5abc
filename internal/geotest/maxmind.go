package geotest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
)

// MaxMind fakes MaxMind's download endpoint for one edition, as
// download.maxmind.com/app/geoip_download serves it:
// ?edition_id=EDITION&license_key=KEY&suffix=tar.gz answers the archive,
// suffix=tar.gz.sha256 a line "<hex SHA-256>  <file name>". Another key
// gets HTTP 401 "Invalid license key", another edition 404.
type MaxMind struct {
	Edition, LicenseKey string
	Archive             []byte
	Checksum            string // the tar.gz.sha256 answer; default: the archive's real one
	Status              int    // when set, every request gets this status

	requests atomic.Int32
}

// Start serves m on a loopback server, closed when the test ends, and
// returns the URL to download from.
func (m *MaxMind) Start(tb TB) string {
	tb.Helper()
	srv := httptest.NewServer(m)
	tb.Cleanup(srv.Close)
	return srv.URL + "/app/geoip_download"
}

// Requests returns how many requests m has answered.
func (m *MaxMind) Requests() int { return int(m.requests.Load()) }

// ServeHTTP answers one request of the download endpoint.
func (m *MaxMind) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.requests.Add(1)
	q := r.URL.Query()
	switch {
	case m.Status != 0:
		http.Error(w, "Service unavailable", m.Status)
	case q.Get("license_key") != m.LicenseKey:
		http.Error(w, "Invalid license key", http.StatusUnauthorized)
	case q.Get("edition_id") != m.Edition:
		http.NotFound(w, r)
	case q.Get("suffix") == "tar.gz":
		w.Write(m.Archive)
	case q.Get("suffix") == "tar.gz.sha256":
		sum := m.Checksum
		if sum == "" {
			h := sha256.Sum256(m.Archive)
			sum = hex.EncodeToString(h[:]) + "  " + m.Edition + "_20240102.tar.gz\n"
		}
		w.Write([]byte(sum))
	default:
		http.Error(w, "bad suffix", http.StatusBadRequest)
	}
}

// File is one file of an archive built by TarGz.
type File struct {
	Name string
	Data []byte
}

// EditionFiles are the files of MaxMind's archive of edition: a folder
// named after the edition and its date, holding the copyright, the licence
// and EDITION.mmdb.
func EditionFiles(edition string, mmdb []byte) []File {
	dir := edition + "_20240102/"
	return []File{
		{dir + "COPYRIGHT.txt", []byte("Database and Contents Copyright (c) MaxMind, Inc.")},
		{dir + "LICENSE.txt", []byte("licence text")},
		{dir + edition + ".mmdb", mmdb},
	}
}

// TarGz returns a tar.gz archive holding files, in order, as regular files.
func TarGz(files ...File) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o644, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Archive is TarGz for a test: it fails the test on an error.
func Archive(tb TB, files ...File) []byte {
	tb.Helper()
	data, err := TarGz(files...)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
