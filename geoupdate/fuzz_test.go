package geoupdate

import (
	"bytes"
	"errors"
	"testing"

	"github.com/usersessions/usersessions/internal/geotest"
)

// FuzzExtractMMDB feeds arbitrary archives to extractMMDB: it must return
// the database or an error wrapping ErrArchive, never write more than the
// limit, and never panic.
func FuzzExtractMMDB(f *testing.F) {
	const edition, limit = "GeoLite2-City", 4096
	valid := geotest.Archive(f, geotest.EditionFiles(edition, []byte("a database"))...)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(geotest.Archive(f, geotest.File{Name: "../" + edition + ".mmdb", Data: []byte("x")}))
	f.Add(geotest.Archive(f, geotest.File{Name: edition + ".mmdb", Data: bytes.Repeat([]byte("x"), limit+1)}))
	f.Add([]byte{})
	f.Add([]byte("\x1f\x8b\x08\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		err := extractMMDB(bytes.NewReader(data), edition, &out, limit)
		if err != nil && !errors.Is(err, ErrArchive) {
			t.Fatalf("error %v does not wrap ErrArchive", err)
		}
		if out.Len() > limit {
			t.Fatalf("wrote %d bytes, over the limit of %d", out.Len(), limit)
		}
	})
}
