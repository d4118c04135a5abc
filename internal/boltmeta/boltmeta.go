// Package boltmeta reads the meta pages of a bbolt file without opening
// it: the file verifier of package usersessions and the safety checks of
// cmd/usersessions share it.
//
// The layout is bbolt's file format, version 2. bbolt writes its pages by
// casting structs onto the mapped file, so every integer is in the byte
// order of the machine that wrote it: native-endian, which Order is. (A
// file is not portable between byte orders; bbolt does not promise it.)
package boltmeta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
)

// Order is the byte order of bbolt's integers: the machine's own.
var Order = binary.NativeEndian

// The parts of the format the readers need.
const (
	Magic      = 0xED0CDAED
	Version    = 2
	PageHeader = 16 // page ID (8), flags (2), count (2), overflow (4)
	MetaPage   = 0x04

	// Size is how many bytes at the start of a meta page Parse reads.
	Size = PageHeader + 64
)

// Meta is what a meta page says.
type Meta struct {
	PageSize uint32
	Root     uint64 // the root bucket's root page
	Freelist uint64
	HWM      uint64 // high water mark: pages in use are below it
	TxID     uint64
	Err      error // nil when header, magic, version and checksum are right
}

// Parse reads meta page number n (0 or 1) from page, which holds at least
// its first Size bytes.
func Parse(page []byte, n uint64) Meta {
	if len(page) < Size {
		return Meta{Err: errors.New("short meta page")}
	}
	m := page[PageHeader:]
	o := Order
	meta := Meta{
		PageSize: o.Uint32(m[8:]),
		Root:     o.Uint64(m[16:]),
		Freelist: o.Uint64(m[32:]),
		HWM:      o.Uint64(m[40:]),
		TxID:     o.Uint64(m[48:]),
	}
	h := fnv.New64a()
	h.Write(m[:56])
	switch {
	case o.Uint64(page) != n || o.Uint16(page[8:]) != MetaPage:
		// Outside the checksum, but bbolt asserts both when it reads the
		// page as a page.
		meta.Err = fmt.Errorf("meta page %d has a damaged header", n)
	case o.Uint32(m[0:]) != Magic:
		meta.Err = errors.New("bad magic")
	case o.Uint32(m[4:]) != Version:
		meta.Err = fmt.Errorf("unknown bbolt version %d", o.Uint32(m[4:]))
	case o.Uint64(m[56:]) != h.Sum64():
		meta.Err = errors.New("meta page checksum mismatch")
	}
	return meta
}

// ErrNotBolt marks a file that is not a bbolt database at all, as against
// a damaged one.
var ErrNotBolt = errors.New("not a bbolt database")

// Newest reads the two meta pages of a bbolt file of size bytes and
// returns the valid one with the higher transaction ID: the one bbolt
// opens with. bbolt finds the second page one page in, at the page size
// the first gives; when the first is damaged it tries the common sizes.
// With neither page valid, the error wraps ErrNotBolt if the file does not
// even carry bbolt's magic number near its start.
func Newest(r io.ReaderAt, size int64) (Meta, error) {
	first := make([]byte, Size)
	if _, err := r.ReadAt(first, 0); err != nil {
		return Meta{}, fmt.Errorf("%w: too short (%d bytes)", ErrNotBolt, size)
	}
	m0 := Parse(first, 0)
	sizes := []uint32{m0.PageSize}
	if m0.Err != nil {
		sizes = []uint32{4096, 8192, 16384, 32768, 65536}
	}
	m1 := Meta{Err: errors.New("unreadable")}
	for _, ps := range sizes {
		if ps < 1024 || ps > 1<<20 || int64(ps)*2 > size {
			continue
		}
		page := make([]byte, Size)
		if _, err := r.ReadAt(page, int64(ps)); err != nil {
			continue
		}
		if m := Parse(page, 1); m.Err == nil && m.PageSize == ps {
			m1 = m
			break
		}
	}
	a, b := m0, m1
	if m1.TxID > m0.TxID {
		a, b = m1, m0
	}
	switch {
	case a.Err == nil:
		return a, nil
	case b.Err == nil:
		return b, nil
	case m0.Err != nil && !bytes.Contains(first[:32], Order.AppendUint32(nil, Magic)):
		return Meta{}, fmt.Errorf("%w: %v", ErrNotBolt, m0.Err)
	default:
		return Meta{}, fmt.Errorf("both meta pages are damaged: %v; %v", m0.Err, m1.Err)
	}
}
