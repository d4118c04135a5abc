package usersessions

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/usersessions/usersessions/internal/boltmeta"
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
// The layout below is bbolt's file format, version 2, in the byte order
// bbolt writes: the machine's own (see package internal/boltmeta, which
// reads the meta pages).

const (
	boltElementSize  = 16
	boltBucketHeader = 16
	boltNoFreelist   = ^uint64(0)

	boltBranchPage   = 0x01
	boltLeafPage     = 0x02
	boltFreelistPage = 0x10
	boltBucketLeaf   = 0x01

	// boltMaxDepth bounds the walk: a real tree of 2^32 keys is a few levels
	// deep, and nested buckets add a level each.
	boltMaxDepth = 64
)

// errNotBolt marks files that are not bbolt databases at all (ErrSchema),
// as against damaged ones (ErrCorrupt).
var errNotBolt = boltmeta.ErrNotBolt

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
	w.pageSize, w.hwm = int64(meta.PageSize), meta.HWM
	if w.hwm < 2 || w.hwm > uint64(w.size/w.pageSize) {
		return fmt.Errorf("the file holds %d pages, its meta page says %d: truncated", w.size/w.pageSize, w.hwm)
	}
	w.seen = map[uint64]bool{0: true, 1: true}
	if meta.Freelist != boltNoFreelist {
		if err := w.verifyFreelist(meta.Freelist); err != nil {
			return err
		}
	}
	_, err = w.tree(meta.Root, nil, nil, 0)
	return err
}

// pickMeta returns the meta page bbolt will use: of the two, the one with
// the higher transaction ID if it is valid, else the other.
func (w *boltWalker) pickMeta() (boltmeta.Meta, error) {
	m, err := boltmeta.Newest(w.f, w.size)
	if err != nil {
		return m, err
	}
	return m, w.checkMeta(m)
}

func (w *boltWalker) checkMeta(m boltmeta.Meta) error {
	if m.PageSize < 1024 || m.PageSize > 1<<20 || m.PageSize&(m.PageSize-1) != 0 {
		return fmt.Errorf("bad page size %d", m.PageSize)
	}
	if m.Root < 2 || m.Root >= m.HWM {
		return fmt.Errorf("root page %d outside the file's %d pages", m.Root, m.HWM)
	}
	return nil
}

// page reads page id with its overflow pages, checking its header.
func (w *boltWalker) page(id uint64, want uint16) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page %d: outside the %d pages in use", id, w.hwm)
	}
	head := make([]byte, boltmeta.PageHeader)
	if _, err := w.f.ReadAt(head, int64(id)*w.pageSize); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	le := boltmeta.Order
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
	le := boltmeta.Order
	count, start := uint64(le.Uint16(p[10:])), boltmeta.PageHeader
	if count == 0xFFFF {
		if len(p) < boltmeta.PageHeader+8 {
			return errors.New("freelist: truncated")
		}
		count, start = le.Uint64(p[boltmeta.PageHeader:]), boltmeta.PageHeader+8
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
	le := boltmeta.Order
	flags, count := le.Uint16(p[8:]), int(le.Uint16(p[10:]))
	if flags != boltBranchPage && flags != boltLeafPage {
		return nil, fmt.Errorf("page %d: unexpected type %#x", id, flags)
	}
	if boltmeta.PageHeader+count*boltElementSize > len(p) {
		return nil, fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	if flags == boltBranchPage && count == 0 {
		// bbolt never writes one, and its cursor would read a child
		// page number from past the (empty) element array.
		return nil, fmt.Errorf("page %d: an empty branch page", id)
	}
	prev, last := lo, []byte(nil)
	for i := range count {
		e := boltmeta.PageHeader + i*boltElementSize
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
				ne := boltmeta.PageHeader + (i+1)*boltElementSize
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
	root := boltmeta.Order.Uint64(v)
	if root != 0 {
		_, err := w.tree(root, nil, nil, depth)
		return err
	}
	inline := v[boltBucketHeader:]
	if len(inline) < boltmeta.PageHeader {
		return fmt.Errorf("page %d: inline bucket of %d bytes", parent, len(inline))
	}
	if boltmeta.Order.Uint16(inline[8:]) != boltLeafPage {
		return fmt.Errorf("page %d: inline bucket is not a leaf", parent)
	}
	_, err := w.node(parent, inline, nil, nil, depth)
	return err
}
