package geoupdate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// get requests one suffix of the edition and checks the status.
func (o *Options) get(ctx context.Context, licenseKey, edition, suffix string) (*http.Response, error) {
	u, err := url.Parse(o.BaseURL)
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
	req.Header.Set("User-Agent", "usersessions-geoupdate")
	resp, err := o.HTTPClient.Do(req)
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
		err = fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return nil, err
}

// fetchChecksum returns the lower-case hex SHA-256 MaxMind publishes for the
// archive, from a body of the form "<hex>  <file name>".
func fetchChecksum(ctx context.Context, o *Options, licenseKey, edition string) (string, error) {
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
		return "", fmt.Errorf("%w: malformed checksum file", ErrChecksum)
	}
	sum := strings.ToLower(fields[0])
	if _, err := hex.DecodeString(sum); err != nil {
		return "", fmt.Errorf("%w: malformed checksum file", ErrChecksum)
	}
	return sum, nil
}

// fetchArchive downloads the archive into w and returns its SHA-256.
func fetchArchive(ctx context.Context, o *Options, licenseKey, edition string, w io.Writer) (string, error) {
	resp, err := o.get(ctx, licenseKey, edition, "tar.gz")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.ContentLength > o.MaxBytes {
		return "", fmt.Errorf("%w: archive of %d bytes exceeds the limit of %d", ErrArchive, resp.ContentLength, o.MaxBytes)
	}
	h := sha256.New()
	pw := &progressWriter{total: resp.ContentLength, fn: o.Progress}
	n, err := io.Copy(io.MultiWriter(w, h, pw), io.LimitReader(resp.Body, o.MaxBytes+1))
	if err != nil {
		return "", fmt.Errorf("download archive: %w", err)
	}
	if n > o.MaxBytes {
		return "", fmt.Errorf("%w: archive exceeds the limit of %d bytes", ErrArchive, o.MaxBytes)
	}
	if pw.fn != nil && pw.total < 0 {
		pw.fn(n, n) // the size is known now
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

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
