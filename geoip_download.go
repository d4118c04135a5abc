package usersessions

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// DefaultGeoIPDownloadURL is MaxMind's download endpoint for GeoIP2 and
// GeoLite2 editions, which DownloadGeoIP uses unless given DownloadBaseURL.
const DefaultGeoIPDownloadURL = "https://download.maxmind.com/app/geoip_download"

// DefaultGeoIPDownloadMaxBytes bounds both the archive DownloadGeoIP fetches
// and the database it extracts, unless given DownloadMaxBytes. MaxMind's
// largest City editions are a few hundred megabytes.
const DefaultGeoIPDownloadMaxBytes = 2 << 30

// Errors returned by DownloadGeoIP, wrapped with the edition. In every case
// the database already in the directory is left untouched.
var (
	// ErrGeoChecksum reports an archive whose SHA-256 differs from the one
	// MaxMind publishes beside it, or a checksum file that cannot be read.
	ErrGeoChecksum = errors.New("usersessions: GeoIP archive checksum mismatch")
	// ErrGeoArchive reports an archive that is not a readable tar.gz, holds
	// no EDITION.mmdb, holds unsafe paths, or exceeds the size limit.
	ErrGeoArchive = errors.New("usersessions: bad GeoIP archive")
	// ErrGeoUnauthorized reports an HTTP 401 or 403: a wrong license key, or
	// an edition the account may not download.
	ErrGeoUnauthorized = errors.New("usersessions: GeoIP download refused (check the license key and edition)")
)

// DownloadOption configures DownloadGeoIP.
type DownloadOption func(*downloadOptions)

type downloadOptions struct {
	baseURL  string
	client   *http.Client
	progress func(done, total int64)
	maxBytes int64
}

// DownloadBaseURL replaces DefaultGeoIPDownloadURL, for a mirror or a test
// server. The query (edition_id, license_key, suffix) is added to it.
func DownloadBaseURL(u string) DownloadOption {
	return func(o *downloadOptions) { o.baseURL = u }
}

// DownloadHTTPClient sets the client for both requests. Default
// http.DefaultClient; bound the whole download with DownloadGeoIP's context.
func DownloadHTTPClient(c *http.Client) DownloadOption {
	return func(o *downloadOptions) { o.client = c }
}

// DownloadProgress has fn called, on the downloading goroutine, after each
// chunk of the archive arrives, with the bytes received so far and the
// archive's size, or -1 when the server does not say. The last call has done
// equal to the full size. It is meant for progress bars: keep it quick.
func DownloadProgress(fn func(done, total int64)) DownloadOption {
	return func(o *downloadOptions) { o.progress = fn }
}

// DownloadMaxBytes bounds the archive and the extracted database, so a
// hostile or broken server cannot fill the disk. Default
// DefaultGeoIPDownloadMaxBytes.
func DownloadMaxBytes(n int64) DownloadOption {
	return func(o *downloadOptions) { o.maxBytes = n }
}

// DownloadGeoIP fetches the current database of a MaxMind edition
// ("GeoLite2-City", "GeoIP2-Country", ...) into dir, creating dir if needed,
// and returns the path of dir/EDITION.mmdb. It is meant for a cron job or a
// command-line tool; a running Geo with GeoOptions.WatchInterval, or one told
// to Reload, then picks the new file up.
//
// It downloads the edition's tar.gz archive and the SHA-256 MaxMind
// publishes for it, checks one against the other, extracts EDITION.mmdb
// (rejecting archives with absolute or ".." paths), checks that it is a valid
// MaxMind DB (opening it and walking its whole structure), and only then
// renames it over the old file, after an fsync, so readers see either the
// old database or the new one, never a mix. Temporary files live in dir,
// start with "." and end in ".part"; they are removed on failure. The new
// file is readable by all (0644), as the database is public data.
//
// The license key travels in the URL, as MaxMind's endpoint requires; it
// never appears in returned errors. Errors wrap ErrGeoChecksum,
// ErrGeoArchive, ErrGeoUnauthorized or ErrGeoInvalid where they apply, and
// the context's error when it ends the download.
func DownloadGeoIP(ctx context.Context, licenseKey, edition, dir string, opts ...DownloadOption) (file string, err error) {
	o := downloadOptions{baseURL: DefaultGeoIPDownloadURL, client: http.DefaultClient, maxBytes: DefaultGeoIPDownloadMaxBytes}
	for _, opt := range opts {
		opt(&o)
	}
	if o.client == nil {
		o.client = http.DefaultClient
	}
	if !validEdition(edition) {
		return "", fmt.Errorf("download GeoIP: invalid edition %q", edition)
	}
	if licenseKey == "" {
		return "", fmt.Errorf("download GeoIP %s: empty license key", edition)
	}
	if dir == "" {
		return "", fmt.Errorf("download GeoIP %s: empty directory", edition)
	}
	defer func() {
		if err != nil {
			err = &redactedError{err: fmt.Errorf("download GeoIP %s: %w", edition, err), secrets: []string{licenseKey, url.QueryEscape(licenseKey)}}
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}

	want, err := fetchChecksum(ctx, &o, licenseKey, edition)
	if err != nil {
		return "", err
	}

	archive, err := os.CreateTemp(dir, "."+edition+"-*.tar.gz.part")
	if err != nil {
		return "", err
	}
	defer func() {
		archive.Close()
		os.Remove(archive.Name())
	}()
	got, err := fetchArchive(ctx, &o, licenseKey, edition, archive)
	if err != nil {
		return "", err
	}
	if got != want {
		return "", fmt.Errorf("%w: archive has SHA-256 %s, MaxMind publishes %s", ErrGeoChecksum, got, want)
	}
	if _, err := archive.Seek(0, io.SeekStart); err != nil {
		return "", err
	}

	db, err := os.CreateTemp(dir, "."+edition+"-*.mmdb.part")
	if err != nil {
		return "", err
	}
	renamed := false
	defer func() {
		db.Close()
		if !renamed {
			os.Remove(db.Name())
		}
	}()
	if err := extractMMDB(archive, edition, db, o.maxBytes); err != nil {
		return "", err
	}
	if err := db.Sync(); err != nil {
		return "", err
	}
	if err := db.Close(); err != nil {
		return "", err
	}
	if err := checkDownloadedDB(db.Name()); err != nil {
		return "", err
	}
	// CreateTemp makes the file private; the application may run as
	// another user than the cron job.
	if err := os.Chmod(db.Name(), 0o644); err != nil {
		return "", err
	}
	final := filepath.Join(dir, edition+".mmdb")
	if err := os.Rename(db.Name(), final); err != nil {
		return "", err
	}
	renamed = true
	syncDir(dir)
	return final, nil
}

// validEdition accepts MaxMind edition IDs and nothing that could leave the
// directory or break the URL.
func validEdition(e string) bool {
	if e == "" || len(e) > 64 || e[0] == '-' || e[0] == '.' {
		return false
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// get requests one suffix of the edition and checks the status.
func (o *downloadOptions) get(ctx context.Context, licenseKey, edition, suffix string) (*http.Response, error) {
	u, err := url.Parse(o.baseURL)
	if err != nil {
		return nil, fmt.Errorf("base URL: %w", err)
	}
	q := u.Query()
	q.Set("edition_id", edition)
	q.Set("license_key", licenseKey)
	q.Set("suffix", suffix)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "usersessions-DownloadGeoIP")
	resp, err := o.client.Do(req)
	if err != nil {
		// *url.Error carries the URL, and with it the license key: keep
		// only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("GET %s (%s): %w", u.Host, suffix, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	// MaxMind explains refusals in a short plain-text body.
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	detail := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(string(msg)))
	err = fmt.Errorf("GET %s (%s): HTTP %s: %q", u.Host, suffix, resp.Status, detail)
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		err = fmt.Errorf("%w: %w", ErrGeoUnauthorized, err)
	}
	return nil, err
}

// fetchChecksum returns the lower-case hex SHA-256 MaxMind publishes for the
// archive, from a body of the form "<hex>  <file name>".
func fetchChecksum(ctx context.Context, o *downloadOptions, licenseKey, edition string) (string, error) {
	resp, err := o.get(ctx, licenseKey, edition, "tar.gz.sha256")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return "", fmt.Errorf("read checksum: %w", err)
	}
	fields := strings.Fields(string(body))
	if len(fields) == 0 || len(fields[0]) != sha256.Size*2 {
		return "", fmt.Errorf("%w: malformed checksum file", ErrGeoChecksum)
	}
	sum := strings.ToLower(fields[0])
	if _, err := hex.DecodeString(sum); err != nil {
		return "", fmt.Errorf("%w: malformed checksum file", ErrGeoChecksum)
	}
	return sum, nil
}

// fetchArchive downloads the archive into w and returns its SHA-256.
func fetchArchive(ctx context.Context, o *downloadOptions, licenseKey, edition string, w io.Writer) (string, error) {
	resp, err := o.get(ctx, licenseKey, edition, "tar.gz")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.ContentLength > o.maxBytes {
		return "", fmt.Errorf("%w: archive of %d bytes exceeds the limit of %d", ErrGeoArchive, resp.ContentLength, o.maxBytes)
	}
	h := sha256.New()
	pw := &progressWriter{total: resp.ContentLength, fn: o.progress}
	n, err := io.Copy(io.MultiWriter(w, h, pw), io.LimitReader(resp.Body, o.maxBytes+1))
	if err != nil {
		return "", fmt.Errorf("download archive: %w", err)
	}
	if n > o.maxBytes {
		return "", fmt.Errorf("%w: archive exceeds the limit of %d bytes", ErrGeoArchive, o.maxBytes)
	}
	if pw.fn != nil && pw.total < 0 {
		pw.fn(n, n) // the size is known now
	}
	return hexSum(h), nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// progressWriter reports the bytes written through it.
type progressWriter struct {
	done, total int64
	fn          func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
	return len(b), nil
}

// extractMMDB copies EDITION.mmdb out of the tar.gz archive r into w. The
// entry's name is never used as a path, but an archive naming absolute or
// ".." paths is not MaxMind's and is refused whole.
func extractMMDB(r io.Reader, edition string, w io.Writer, maxBytes int64) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrGeoArchive, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	want := edition + ".mmdb"
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%w: no %s in the archive", ErrGeoArchive, want)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrGeoArchive, err)
		}
		name := strings.ReplaceAll(hdr.Name, `\`, "/")
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") ||
			strings.Contains(name, "/../") || strings.HasSuffix(name, "/..") {
			return fmt.Errorf("%w: unsafe path %q", ErrGeoArchive, hdr.Name)
		}
		if path.Base(path.Clean(name)) != want || hdr.Typeflag != tar.TypeReg {
			continue
		}
		if hdr.Size > maxBytes {
			return fmt.Errorf("%w: %s of %d bytes exceeds the limit of %d", ErrGeoArchive, want, hdr.Size, maxBytes)
		}
		n, err := io.Copy(w, io.LimitReader(tr, maxBytes+1))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrGeoArchive, err)
		}
		if n > maxBytes {
			return fmt.Errorf("%w: %s exceeds the limit of %d bytes", ErrGeoArchive, want, maxBytes)
		}
		return nil
	}
}

// checkDownloadedDB opens the extracted file and walks its whole structure:
// a file that passed the checksum can still be one this package cannot
// read. The memory map is released before the file is renamed.
func checkDownloadedDB(file string) error {
	r, err := maxminddb.Open(file)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrGeoInvalid, err)
	}
	defer r.Close()
	if err := r.Verify(); err != nil {
		return fmt.Errorf("%w: %w", ErrGeoInvalid, err)
	}
	return nil
}

// syncDir makes a rename durable. Errors are ignored: some systems cannot
// sync directories, and the rename itself has already succeeded.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// redactedError hides secrets in an error's text while keeping it
// inspectable with errors.Is and errors.As.
type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	s := e.err.Error()
	for _, secret := range e.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[license key]")
		}
	}
	return s
}

func (e *redactedError) Unwrap() error { return e.err }
