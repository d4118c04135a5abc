package usersessions

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"github.com/usersessions/usersessions/backend"
)

// The record format.
//
// A record is the value stored under a session's ID. Version 1 is:
//
//	byte     format version (1)
//	[32]byte SHA-256 of the token's secret
//	uvarint length + bytes: user ID
//	byte length (0, 4 or 16) + bytes: IP address
//	uvarint length + bytes: user agent
//	varint   created, last seen, expires (Unix nanoseconds)
//	uvarint  identity (version 2 only; 0 in version 1)
//	uvarint  number of values, then for each:
//	         uvarint length + bytes: key; byte tag; payload (see valueTag)
//
// Varints keep records small (a typical session is 150-300 bytes), and the
// fixed order makes decoding a single forward pass. Every length is checked
// against what is left, so corrupt bytes give an error, never a panic or a
// huge allocation.
//
// Version 2 adds the identity: a counter that every change of the session's
// UserID (RotateUser, a Save that sets another UserID) increments. A Save
// must carry the identity its copy was loaded with, so a request that
// started before a sign-in or sign-out cannot undo it (ErrConflict).
// Version 1 records still decode, with identity 0; every write writes
// version 2.
const (
	recordVersion   = 2
	recordVersionV1 = 1
)

// record is a backend.Record with what the Store's own decoding adds, so
// the embedded backend's load path makes no allocation twice: the values
// decoded, and the ID's text form made in the record's own allocation.
// Both are zero for a record another Backend returned; session makes them.
type record struct {
	backend.Record
	decoded valueList // Values decoded, when the reader asked for them
	idText  string    // the ID's text form, when the decoder made it
}

// session builds the public view of r, whose values must be decoded (see
// Store.decode).
func (r *record) session(idle time.Duration) *Session {
	idText := r.idText
	if idText == "" {
		idText = r.ID.String()
	}
	return &Session{
		ID:        idText,
		UserID:    r.UserID,
		IP:        r.IP,
		UserAgent: r.UserAgent,
		CreatedAt: time.Unix(0, r.Created),
		LastSeen:  time.Unix(0, r.LastSeen),
		ExpiresAt: time.Unix(0, r.Expires),
		identity:  r.Identity,
		values:    r.decoded,
		idle:      idle,
	}
}

// encodeRecord appends the encoding of r to dst. r.rawValues must hold the
// encoded values (see encodeValues).
func encodeRecord(dst []byte, r *backend.Record) []byte {
	dst = append(dst, recordVersion)
	dst = append(dst, r.Hash[:]...)
	dst = appendString(dst, r.UserID)
	switch {
	case !r.IP.IsValid():
		dst = append(dst, 0)
	case r.IP.Is4():
		b := r.IP.As4()
		dst = append(dst, 4)
		dst = append(dst, b[:]...)
	default:
		b := r.IP.As16()
		dst = append(dst, 16)
		dst = append(dst, b[:]...)
	}
	dst = appendString(dst, r.UserAgent)
	dst = binary.AppendVarint(dst, r.Created)
	dst = binary.AppendVarint(dst, r.LastSeen)
	dst = binary.AppendVarint(dst, r.Expires)
	dst = binary.AppendUvarint(dst, r.Identity)
	return append(dst, r.Values...)
}

// errRecord is wrapped into every decoding error.
var errRecord = fmt.Errorf("%w: bad session record", ErrCorrupt)

// decodeRecord decodes data. With values false it stops after the header and
// leaves r.values nil (cleanup and index checks need no values). The result
// never aliases data: bbolt's memory is only valid inside its transaction.
func decodeRecord(data []byte, withValues bool) (record, error) {
	return decodeRecordOf(nil, data, withValues)
}

// decodeRecordOf is decodeRecord for the record stored under id, when id is
// not nil: the record also gets the ID's text form (r.idText), made in the
// allocation that backs its other strings. Paths that turn records into
// Sessions use it; a separate ID string was one allocation of five on an
// uncached Load.
func decodeRecordOf(id *backend.ID, data []byte, withValues bool) (record, error) {
	var r record
	if len(data) == 0 {
		return r, fmt.Errorf("%w: empty", errRecord)
	}
	if data[0] != recordVersion && data[0] != recordVersionV1 {
		return r, fmt.Errorf("%w: unknown format version %d", errRecord, data[0])
	}
	// One private copy backs every string of the record (see decoder.str),
	// so decoding costs a couple of allocations however many fields it has.
	spare := 0
	if id != nil {
		spare = backend.IDLength
	}
	buf := make([]byte, len(data)+spare)
	copy(buf, data)
	if id != nil {
		r.ID = *id
		text := buf[len(data):]
		base64.RawURLEncoding.Encode(text, id[:])
		r.idText = unsafe.String(&text[0], backend.IDLength)
		buf = buf[:len(data):len(data)] // nothing may append over the text
	}
	d := decoder{buf: buf, off: 1}
	copy(r.Hash[:], d.bytes(len(r.Hash)))
	r.UserID = d.str()
	switch n := d.byte(); n {
	case 0:
	case 4:
		r.IP = netip.AddrFrom4([4]byte(d.bytes(4)))
	case 16:
		r.IP = netip.AddrFrom16([16]byte(d.bytes(16)))
	default:
		d.fail("bad IP length %d", n)
	}
	r.UserAgent = d.str()
	r.Created = d.varint()
	r.LastSeen = d.varint()
	r.Expires = d.varint()
	if data[0] >= 2 {
		r.Identity = d.uvarint()
	}
	if d.err != nil {
		return record{}, d.err
	}
	r.Values = buf[d.off:]
	if withValues {
		var err error
		if r.decoded, err = decodeValues(r.Values); err != nil {
			return record{}, err
		}
	}
	return r, nil
}

// encodeEnded appends a history entry: varint "keep until", the reason
// and By as length-prefixed strings, then the record (encodeRecord).
func encodeEnded(dst []byte, r *backend.Record, e backend.Ending, until int64) []byte {
	dst = binary.AppendVarint(dst, until)
	dst = appendString(dst, string(e.Reason))
	dst = appendString(dst, e.By)
	return encodeRecord(dst, r)
}

// decodeEnded decodes a history entry of the session id, ended at the
// time in its key.
func decodeEnded(id backend.ID, data []byte) (backend.EndedRecord, int64, error) {
	d := decoder{buf: bytes.Clone(data)}
	until := d.varint()
	reason := d.str()
	by := d.str()
	if d.err != nil {
		return backend.EndedRecord{}, 0, d.err
	}
	r, err := decodeRecordOf(&id, d.buf[d.off:], true)
	if err != nil {
		return backend.EndedRecord{}, 0, err
	}
	return backend.EndedRecord{Record: r.Record, Reason: reason, By: by}, until, nil
}

// decoder reads a record front to back. The first error sticks and later
// reads return zero values, so callers check once at the end.
type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{errRecord}, args...)...)
	}
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.buf)-d.off {
		d.fail("truncated at byte %d", d.off)
		return make([]byte, max(n, 0))
	}
	b := d.buf[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.buf) {
		d.fail("truncated at byte %d", d.off)
		return 0
	}
	b := d.buf[d.off]
	d.off++
	return b
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail("bad varint at byte %d", d.off)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.fail("bad varint at byte %d", d.off)
		return 0
	}
	d.off += n
	return v
}

// length reads a uvarint length and checks that that many bytes remain.
func (d *decoder) length() int {
	n := d.uvarint()
	if n > uint64(len(d.buf)-d.off) {
		d.fail("length %d past the end", n)
		return 0
	}
	return int(n)
}

// str returns the next length-prefixed string without copying: it points
// into d.buf, the decoder's private copy, which is never written again.
func (d *decoder) str() string {
	n := d.length()
	if d.err != nil || n == 0 {
		return ""
	}
	b := d.bytes(n)
	return unsafe.String(&b[0], n)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}
