package geoupdate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/usersessions/usersessions"
)

// DefaultURL is MaxMind's download endpoint for GeoIP2 and GeoLite2
// editions, which Download uses unless Options.BaseURL says otherwise.
const DefaultURL = "https://download.maxmind.com/app/geoip_download"

// DefaultMaxBytes bounds both the archive Download fetches and the database
// it extracts, unless Options.MaxBytes says otherwise. MaxMind's largest
// City editions are a few hundred megabytes.
const DefaultMaxBytes = 2 << 30

// Errors returned by Download, wrapped with the edition; a database that
// fails its check wraps usersessions.ErrGeoInvalid. In every case the
// database already in the directory is left untouched.
var (
	// ErrChecksum reports an archive whose SHA-256 differs from the one
	// MaxMind publishes beside it, or a checksum file that cannot be read.
	ErrChecksum = errors.New("geoupdate: GeoIP archive checksum mismatch")
	// ErrArchive reports an archive that is not a readable tar.gz, holds
	// no EDITION.mmdb, holds unsafe paths, or exceeds the size limit.
	ErrArchive = errors.New("geoupdate: bad GeoIP archive")
	// ErrUnauthorized reports an HTTP 401 or 403: a wrong license key, or
	// an edition the account may not download.
	ErrUnauthorized = errors.New("geoupdate: GeoIP download refused (check the license key and edition)")
)

// Options configures Download. The zero value (or nil) downloads from
// DefaultURL with http.DefaultClient, up to DefaultMaxBytes, reporting no
// progress.
type Options struct {
	// BaseURL replaces DefaultURL, for a mirror or a test server. The
	// query (edition_id, license_key, suffix) is added to it.
	BaseURL string

	// HTTPClient makes both requests. Default http.DefaultClient; bound
	// the whole download with Download's context.
	HTTPClient *http.Client

	// MaxBytes bounds the archive and the extracted database, so that a
	// hostile or broken server cannot fill the disk. Zero means
	// DefaultMaxBytes; a negative value is an error.
	MaxBytes int64

	// Progress, when set, is called on the downloading goroutine after
	// each chunk of the archive arrives, with the bytes received so far and
	// the archive's size, or -1 when the server does not say. The last
	// call has done equal to the full size. It is meant for progress bars:
	// keep it quick.
	Progress func(done, total int64)
}

// withDefaults returns a copy of o (which may be nil) with every zero field
// set to its default.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	if c.MaxBytes < 0 {
		return c, fmt.Errorf("negative MaxBytes %d", c.MaxBytes)
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultURL
	}
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	return c, nil
}

// Download fetches the current database of a MaxMind edition
// ("GeoLite2-City", "GeoIP2-Country", ...) into dir, creating dir if needed,
// and returns the path of dir/EDITION.mmdb. opts may be nil.
//
// It downloads the edition's tar.gz archive and the SHA-256 MaxMind
// publishes for it, checks one against the other, extracts EDITION.mmdb
// (rejecting archives with absolute or ".." paths), checks the database
// (see checkDatabase), and only then renames it over the old file, after
// an fsync, so readers see either the old database or the new one, never a
// mix. Temporary files live in dir, start with "." and end in ".part";
// they are removed on failure. The new file is readable by all (0644), as
// the database is public data.
//
// The license key travels in the URL, as MaxMind's endpoint requires; it
// never appears in returned errors. Errors wrap ErrChecksum, ErrArchive,
// ErrUnauthorized or usersessions.ErrGeoInvalid where they apply, and the
// context's error when it ends the download.
func Download(ctx context.Context, licenseKey, edition, dir string, opts *Options) (file string, err error) {
	o, err := opts.withDefaults()
	if err != nil {
		return "", fmt.Errorf("download GeoIP %s: %w", edition, err)
	}
	if err := checkArguments(licenseKey, edition, dir); err != nil {
		return "", err
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
		return "", fmt.Errorf("%w: archive has SHA-256 %s, MaxMind publishes %s", ErrChecksum, got, want)
	}
	if _, err := archive.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return install(archive, edition, dir, o.MaxBytes)
}

// checkArguments rejects what would make a request pointless or let the
// edition's name leave dir, before anything is sent.
func checkArguments(licenseKey, edition, dir string) error {
	if !validEdition(edition) {
		return fmt.Errorf("download GeoIP: invalid edition %q", edition)
	}
	if licenseKey == "" {
		return fmt.Errorf("download GeoIP %s: empty license key", edition)
	}
	if dir == "" {
		return fmt.Errorf("download GeoIP %s: empty directory", edition)
	}
	return nil
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

// install extracts EDITION.mmdb from the archive into a temporary file in
// dir, checks it and renames it over dir/EDITION.mmdb.
func install(archive io.Reader, edition, dir string, maxBytes int64) (string, error) {
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
	if err := extractMMDB(archive, edition, db, maxBytes); err != nil {
		return "", err
	}
	if err := db.Sync(); err != nil {
		return "", err
	}
	if err := db.Close(); err != nil {
		return "", err
	}
	if err := checkDatabase(db.Name()); err != nil {
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

// checkDatabase opens the extracted file as the application will, with
// usersessions.OpenGeo and its full structural check (GeoOptions.Verify),
// so that no file Geo would reject replaces a good one. An edition Geo has
// no use for (an ASN database, say) is still installed once the MaxMind DB
// reader has walked its whole structure: the directory may serve other
// programs too.
func checkDatabase(file string) error {
	g, err := usersessions.OpenGeo(file, &usersessions.GeoOptions{Verify: true})
	if err == nil {
		return g.Close()
	}
	if !errors.Is(err, usersessions.ErrGeoDatabaseType) {
		return err
	}
	r, err := maxminddb.Open(file)
	if err != nil {
		return fmt.Errorf("%w: %w", usersessions.ErrGeoInvalid, err)
	}
	defer r.Close() // the memory map is released before the rename
	if err := r.Verify(); err != nil {
		return fmt.Errorf("%w: %w", usersessions.ErrGeoInvalid, err)
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
