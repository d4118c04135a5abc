package usersessions

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// Verifying a bbolt file before bbolt reads it.
//
// bbolt trusts its file. On a damaged one it fails assertions or reads
// through a wild page number, and some of that happens where no recover can
// reach: opening a file written with NoFreelistSync walks every page in a
// goroutine bbolt starts and panics there, and a page number past the end of
// the mapping faults. A damaged file would kill the process instead of
// failing Open.
//
// So Open first walks the file itself, with bounds-checked reads of its own
// and no memory mapping, and checks everything bbolt's open-time walk
// asserts: the meta page bbolt will pick, every page reachable from it
// (header, type, bounds, element offsets), each page referenced once, and
// keys in order within and across pages. A file that passes can be opened
// and walked by bbolt without an assertion failing or a read leaving the
// file. It costs one read of every page, as bbolt's own walk does.
//
// The layout below is bbolt's file format, version 2, little-endian (the
// byte order of every platform bbolt is used on here).

const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	boltPageHeader   = 16
	boltElementSize  = 16
	boltBucketHeader = 16
	boltNoFreelist   = ^uint64(0)

	boltBranchPage   = 0x01
	boltLeafPage     = 0x02
	boltMetaPage     = 0x04
	boltFreelistPage = 0x10
	boltBucketLeaf   = 0x01

	// boltMaxDepth bounds the walk: a real tree of 2^32 keys is a few levels
	// deep, and nested buckets add a level each.
	boltMaxDepth = 64
)

// boltMeta is the part of a meta page the walk needs.
type boltMeta struct {
	pageSize uint32
	root     uint64 // the root bucket's root page
	freelist uint64
	hwm      uint64 // high water mark: pages in use are below it
	txid     uint64
	valid    error // nil when magic, version and checksum are right
}

// parseBoltMeta reads meta page number n (0 or 1) from page.
func parseBoltMeta(page []byte, n uint64) boltMeta {
	if len(page) < boltPageHeader+64 {
		return boltMeta{valid: errors.New("short meta page")}
	}
	m := page[boltPageHeader:]
	le := binary.LittleEndian
	meta := boltMeta{
		pageSize: le.Uint32(m[8:]),
		root:     le.Uint64(m[16:]),
		freelist: le.Uint64(m[32:]),
		hwm:      le.Uint64(m[40:]),
		txid:     le.Uint64(m[48:]),
	}
	h := fnv.New64a()
	h.Write(m[:56])
	switch {
	case le.Uint64(page) != n || le.Uint16(page[8:]) != boltMetaPage:
		// Outside the checksum, but bbolt asserts both when it reads the
		// page as a page.
		meta.valid = fmt.Errorf("meta page %d has a damaged header", n)
	case le.Uint32(m[0:]) != boltMagic:
		meta.valid = errors.New("bad magic")
	case le.Uint32(m[4:]) != boltVersion:
		meta.valid = fmt.Errorf("unknown bbolt version %d", le.Uint32(m[4:]))
	case le.Uint64(m[56:]) != h.Sum64():
		meta.valid = errors.New("meta page checksum mismatch")
	}
	return meta
}

// errNotBolt marks files that are not bbolt databases at all (ErrSchema),
// as against damaged ones (ErrCorrupt).
var errNotBolt = errors.New("not a bbolt database")

// verifyBoltFile checks the file at path as described above. It returns nil
// for a missing or empty file (Open creates it), an error wrapping
// errNotBolt for a file with no valid meta page, and a description of the
// first damage found otherwise.
func verifyBoltFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	if info.Size() == 0 {
		return nil
	}
	w := &boltWalker{f: f, size: info.Size()}
	return w.verify()
}

type boltWalker struct {
	f        io.ReaderAt
	size     int64
	pageSize int64
	hwm      uint64
	seen     map[uint64]bool
}

func (w *boltWalker) verify() error {
	meta, err := w.pickMeta()
	if err != nil {
		return err
	}
	w.pageSize, w.hwm = int64(meta.pageSize), meta.hwm
	if w.hwm < 2 || w.hwm > uint64(w.size/w.pageSize) {
		return fmt.Errorf("the file holds %d pages, its meta page says %d: truncated", w.size/w.pageSize, w.hwm)
	}
	w.seen = map[uint64]bool{0: true, 1: true}
	if meta.freelist != boltNoFreelist {
		if err := w.verifyFreelist(meta.freelist); err != nil {
			return err
		}
	}
	_, err = w.tree(meta.root, nil, nil, 0)
	return err
}

// pickMeta returns the meta page bbolt will use: of the two, the one with
// the higher transaction ID if it is valid, else the other.
func (w *boltWalker) pickMeta() (boltMeta, error) {
	first := make([]byte, 4096)
	if _, err := w.f.ReadAt(first, 0); err != nil {
		return boltMeta{}, fmt.Errorf("%w: too short (%d bytes)", errNotBolt, w.size)
	}
	m0 := parseBoltMeta(first, 0)
	// The second meta page sits one page in; bbolt guesses the size from
	// the first page, and if that is damaged tries the common sizes.
	sizes := []uint32{m0.pageSize}
	if m0.valid != nil {
		sizes = []uint32{4096, 8192, 16384, 32768, 65536}
	}
	m1 := boltMeta{valid: errors.New("unreadable")}
	for _, ps := range sizes {
		if ps < 1024 || ps > 1<<20 || int64(ps)*2 > w.size {
			continue
		}
		page := make([]byte, boltPageHeader+64)
		if _, err := w.f.ReadAt(page, int64(ps)); err != nil {
			continue
		}
		if m := parseBoltMeta(page, 1); m.valid == nil && m.pageSize == ps {
			m1 = m
			break
		}
	}
	a, b := m0, m1
	if m1.txid > m0.txid {
		a, b = m1, m0
	}
	switch {
	case a.valid == nil:
		return a, w.checkMeta(a)
	case b.valid == nil:
		return b, w.checkMeta(b)
	case m0.valid != nil && !bytes.Contains(first[:32], []byte{0xED, 0xDA, 0x0C, 0xED}):
		return boltMeta{}, fmt.Errorf("%w: %v", errNotBolt, m0.valid)
	default:
		return boltMeta{}, fmt.Errorf("both meta pages are damaged: %v; %v", m0.valid, m1.valid)
	}
}

func (w *boltWalker) checkMeta(m boltMeta) error {
	if m.pageSize < 1024 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0 {
		return fmt.Errorf("bad page size %d", m.pageSize)
	}
	if m.root < 2 || m.root >= m.hwm {
		return fmt.Errorf("root page %d outside the file's %d pages", m.root, m.hwm)
	}
	return nil
}

// page reads page id with its overflow pages, checking its header.
func (w *boltWalker) page(id uint64, want uint16) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page %d: outside the %d pages in use", id, w.hwm)
	}
	head := make([]byte, boltPageHeader)
	if _, err := w.f.ReadAt(head, int64(id)*w.pageSize); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	le := binary.LittleEndian
	if got := le.Uint64(head); got != id {
		return nil, fmt.Errorf("page %d: identifies as page %d", id, got)
	}
	flags := le.Uint16(head[8:])
	if flags&want == 0 {
		return nil, fmt.Errorf("page %d: unexpected type %#x", id, flags)
	}
	overflow := uint64(le.Uint32(head[12:]))
	if id+overflow >= w.hwm {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the %d in use", id, overflow, w.hwm)
	}
	for i := id; i <= id+overflow; i++ {
		if w.seen[i] {
			return nil, fmt.Errorf("page %d: referenced twice", i)
		}
		w.seen[i] = true
	}
	buf := make([]byte, int64(overflow+1)*w.pageSize)
	if _, err := w.f.ReadAt(buf, int64(id)*w.pageSize); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return buf, nil
}

func (w *boltWalker) verifyFreelist(id uint64) error {
	p, err := w.page(id, boltFreelistPage)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	le := binary.LittleEndian
	count, start := uint64(le.Uint16(p[10:])), boltPageHeader
	if count == 0xFFFF {
		if len(p) < boltPageHeader+8 {
			return errors.New("freelist: truncated")
		}
		count, start = le.Uint64(p[boltPageHeader:]), boltPageHeader+8
	}
	if count > uint64(len(p)-start)/8 {
		return fmt.Errorf("freelist: %d entries do not fit its page", count)
	}
	for i := range count {
		if free := le.Uint64(p[start+int(i)*8:]); free < 2 || free >= w.hwm {
			return fmt.Errorf("freelist: page %d outside the file", free)
		}
	}
	return nil
}

// tree checks the B+tree rooted at page id, whose keys must lie in
// [lo, hi) (nil: unbounded), and returns its last key.
func (w *boltWalker) tree(id uint64, lo, hi []byte, depth int) ([]byte, error) {
	if depth > boltMaxDepth {
		return nil, fmt.Errorf("page %d: nested deeper than %d", id, boltMaxDepth)
	}
	p, err := w.page(id, boltBranchPage|boltLeafPage)
	if err != nil {
		return nil, err
	}
	return w.node(id, p, lo, hi, depth)
}

// node checks one branch or leaf page p (page id, or 0 for an inline
// bucket's page, which lives inside its parent's value).
func (w *boltWalker) node(id uint64, p []byte, lo, hi []byte, depth int) ([]byte, error) {
	le := binary.LittleEndian
	flags, count := le.Uint16(p[8:]), int(le.Uint16(p[10:]))
	if flags != boltBranchPage && flags != boltLeafPage {
		return nil, fmt.Errorf("page %d: unexpected type %#x", id, flags)
	}
	if boltPageHeader+count*boltElementSize > len(p) {
		return nil, fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	if flags == boltBranchPage && count == 0 {
		// bbolt never writes one, and its cursor would read a child
		// page number from past the (empty) element array.
		return nil, fmt.Errorf("page %d: an empty branch page", id)
	}
	prev, last := lo, []byte(nil)
	for i := range count {
		e := boltPageHeader + i*boltElementSize
		var pos, ksize, vsize uint64
		var child uint64
		var elemFlags uint32
		if flags == boltBranchPage {
			pos, ksize, child = uint64(le.Uint32(p[e:])), uint64(le.Uint32(p[e+4:])), le.Uint64(p[e+8:])
		} else {
			elemFlags = le.Uint32(p[e:])
			pos, ksize, vsize = uint64(le.Uint32(p[e+4:])), uint64(le.Uint32(p[e+8:])), uint64(le.Uint32(p[e+12:]))
		}
		start := uint64(e) + pos
		if start+ksize+vsize > uint64(len(p)) {
			return nil, fmt.Errorf("page %d: element %d runs past the page", id, i)
		}
		key := p[start : start+ksize]
		if i == 0 && prev != nil && bytes.Compare(prev, key) > 0 ||
			i > 0 && bytes.Compare(prev, key) >= 0 ||
			hi != nil && bytes.Compare(key, hi) >= 0 {
			return nil, fmt.Errorf("page %d: key %d out of order", id, i)
		}
		if flags == boltBranchPage {
			next := hi
			if i+1 < count {
				ne := boltPageHeader + (i+1)*boltElementSize
				npos, nksize := uint64(le.Uint32(p[ne:])), uint64(le.Uint32(p[ne+4:]))
				if uint64(ne)+npos+nksize > uint64(len(p)) {
					return nil, fmt.Errorf("page %d: element %d runs past the page", id, i+1)
				}
				next = p[uint64(ne)+npos : uint64(ne)+npos+nksize]
			}
			sub, err := w.tree(child, key, next, depth+1)
			if err != nil {
				return nil, err
			}
			prev, last = sub, sub
			continue
		}
		prev, last = key, key
		if elemFlags&boltBucketLeaf != 0 {
			if err := w.bucket(id, p[start+ksize:start+ksize+vsize], depth+1); err != nil {
				return nil, err
			}
		}
	}
	return last, nil
}

// bucket checks a nested bucket's value: its header, and its tree, stored
// on its own pages or inline in the value.
func (w *boltWalker) bucket(parent uint64, v []byte, depth int) error {
	if len(v) < boltBucketHeader {
		return fmt.Errorf("page %d: bucket value of %d bytes", parent, len(v))
	}
	root := binary.LittleEndian.Uint64(v)
	if root != 0 {
		_, err := w.tree(root, nil, nil, depth)
		return err
	}
	inline := v[boltBucketHeader:]
	if len(inline) < boltPageHeader {
		return fmt.Errorf("page %d: inline bucket of %d bytes", parent, len(inline))
	}
	if binary.LittleEndian.Uint16(inline[8:]) != boltLeafPage {
		return fmt.Errorf("page %d: inline bucket is not a leaf", parent)
	}
	_, err := w.node(parent, inline, nil, nil, depth)
	return err
}
