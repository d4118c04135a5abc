package geoupdate

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"strings"
)

// extractMMDB copies EDITION.mmdb out of the tar.gz archive r into w. The
// entry's name is never used as a path, but an archive naming absolute or
// ".." paths is not MaxMind's and is refused whole.
func extractMMDB(r io.Reader, edition string, w io.Writer, maxBytes int64) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrArchive, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	want := edition + ".mmdb"
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%w: no %s in the archive", ErrArchive, want)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrArchive, err)
		}
		name := strings.ReplaceAll(hdr.Name, `\`, "/")
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") ||
			strings.Contains(name, "/../") || strings.HasSuffix(name, "/..") {
			return fmt.Errorf("%w: unsafe path %q", ErrArchive, hdr.Name)
		}
		if path.Base(path.Clean(name)) != want || hdr.Typeflag != tar.TypeReg {
			continue
		}
		if hdr.Size > maxBytes {
			return fmt.Errorf("%w: %s of %d bytes exceeds the limit of %d", ErrArchive, want, hdr.Size, maxBytes)
		}
		n, err := io.Copy(w, io.LimitReader(tr, maxBytes+1))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrArchive, err)
		}
		if n > maxBytes {
			return fmt.Errorf("%w: %s exceeds the limit of %d bytes", ErrArchive, want, maxBytes)
		}
		return nil
	}
}
