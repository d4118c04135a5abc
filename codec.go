package usersessions

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"sync"
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

// valueTag says how a value is encoded. The numbers are part of the file
// format: never renumber, only add.
type valueTag byte

const (
	tagNil valueTag = iota + 1
	tagString
	tagBool
	tagInt
	tagInt8
	tagInt16
	tagInt32
	tagInt64
	tagUint
	tagUint8
	tagUint16
	tagUint32
	tagUint64
	tagFloat32
	tagFloat64
	tagBytes
	tagTime
	tagDuration
	tagStrings
	tagList
	tagMap
	tagRegistered
)

// maxValueDepth bounds nesting of lists and maps, so a crafted record cannot
// exhaust the stack.
const maxValueDepth = 32

// ErrUnsupportedType is returned by Save for a value whose type is neither
// built in nor registered with RegisterType.
var ErrUnsupportedType = errors.New("usersessions: unsupported value type")

// encodeValues encodes a session's values (the tail of a record).
func encodeValues(dst []byte, values valueList) ([]byte, error) {
	dst = binary.AppendUvarint(dst, uint64(len(values)))
	var err error
	for _, kv := range values {
		dst = appendString(dst, kv.key)
		if dst, err = encodeValue(dst, kv.v, 0); err != nil {
			return nil, fmt.Errorf("value %q: %w", kv.key, err)
		}
	}
	return dst, nil
}

func encodeValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxValueDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrUnsupportedType, maxValueDepth)
	}
	switch v := v.(type) {
	case nil:
		return append(dst, byte(tagNil)), nil
	case string:
		return appendString(append(dst, byte(tagString)), v), nil
	case bool:
		b := byte(0)
		if v {
			b = 1
		}
		return append(dst, byte(tagBool), b), nil
	case int:
		return binary.AppendVarint(append(dst, byte(tagInt)), int64(v)), nil
	case int8:
		return binary.AppendVarint(append(dst, byte(tagInt8)), int64(v)), nil
	case int16:
		return binary.AppendVarint(append(dst, byte(tagInt16)), int64(v)), nil
	case int32:
		return binary.AppendVarint(append(dst, byte(tagInt32)), int64(v)), nil
	case int64:
		return binary.AppendVarint(append(dst, byte(tagInt64)), v), nil
	case uint:
		return binary.AppendUvarint(append(dst, byte(tagUint)), uint64(v)), nil
	case uint8:
		return binary.AppendUvarint(append(dst, byte(tagUint8)), uint64(v)), nil
	case uint16:
		return binary.AppendUvarint(append(dst, byte(tagUint16)), uint64(v)), nil
	case uint32:
		return binary.AppendUvarint(append(dst, byte(tagUint32)), uint64(v)), nil
	case uint64:
		return binary.AppendUvarint(append(dst, byte(tagUint64)), v), nil
	case float32:
		return binary.LittleEndian.AppendUint32(append(dst, byte(tagFloat32)), math.Float32bits(v)), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(dst, byte(tagFloat64)), math.Float64bits(v)), nil
	case []byte:
		return appendString(append(dst, byte(tagBytes)), string(v)), nil
	case time.Time:
		b, err := v.MarshalBinary()
		if err != nil {
			return nil, err
		}
		return appendString(append(dst, byte(tagTime)), string(b)), nil
	case time.Duration:
		return binary.AppendVarint(append(dst, byte(tagDuration)), int64(v)), nil
	case []string:
		dst = binary.AppendUvarint(append(dst, byte(tagStrings)), uint64(len(v)))
		for _, s := range v {
			dst = appendString(dst, s)
		}
		return dst, nil
	case []any:
		dst = binary.AppendUvarint(append(dst, byte(tagList)), uint64(len(v)))
		var err error
		for _, e := range v {
			if dst, err = encodeValue(dst, e, depth+1); err != nil {
				return nil, err
			}
		}
		return dst, nil
	case map[string]any:
		dst = binary.AppendUvarint(append(dst, byte(tagMap)), uint64(len(v)))
		var err error
		for k, e := range v {
			dst = appendString(dst, k)
			if dst, err = encodeValue(dst, e, depth+1); err != nil {
				return nil, err
			}
		}
		return dst, nil
	}
	return encodeRegistered(dst, v)
}

// decodeValues decodes the values section of a record. An empty section
// decodes to a nil list; a repeated key is corruption.
func decodeValues(data []byte) (valueList, error) {
	if len(data) == 0 { // no section at all: a record written with nil Values
		return nil, nil
	}
	d := decoder{buf: data}
	n := d.length() // each value takes at least 2 bytes, so this bounds the list
	if d.err != nil {
		return nil, d.err
	}
	if n == 0 {
		return nil, nil
	}
	values := make(valueList, 0, n)
	var seen map[string]bool // for long lists only: short ones scan
	for range n {
		k := d.str()
		v := d.value(0)
		if d.err != nil {
			return nil, d.err
		}
		if n > 16 {
			if seen == nil {
				seen = make(map[string]bool, n)
			}
			if seen[k] {
				return nil, fmt.Errorf("%w: key %q twice", errRecord, k)
			}
			seen[k] = true
		} else if values.index(k) >= 0 {
			return nil, fmt.Errorf("%w: key %q twice", errRecord, k)
		}
		values = append(values, keyValue{k, v})
	}
	if d.off != len(d.buf) {
		return nil, fmt.Errorf("%w: %d trailing bytes", errRecord, len(d.buf)-d.off)
	}
	return values, nil
}

func (d *decoder) value(depth int) any {
	if depth > maxValueDepth {
		d.fail("values nested deeper than %d", maxValueDepth)
		return nil
	}
	switch tag := valueTag(d.byte()); tag {
	case tagNil:
		return nil
	case tagString:
		return d.str()
	case tagBool:
		return d.byte() != 0
	case tagInt:
		return int(d.varint())
	case tagInt8:
		return int8(d.varint())
	case tagInt16:
		return int16(d.varint())
	case tagInt32:
		return int32(d.varint())
	case tagInt64:
		return d.varint()
	case tagUint:
		return uint(d.uvarint())
	case tagUint8:
		return uint8(d.uvarint())
	case tagUint16:
		return uint16(d.uvarint())
	case tagUint32:
		return uint32(d.uvarint())
	case tagUint64:
		return d.uvarint()
	case tagFloat32:
		return math.Float32frombits(binary.LittleEndian.Uint32(d.bytes(4)))
	case tagFloat64:
		return math.Float64frombits(binary.LittleEndian.Uint64(d.bytes(8)))
	case tagBytes:
		return bytes.Clone(d.bytes(d.length())) // the caller may write to it
	case tagTime:
		var t time.Time
		if err := t.UnmarshalBinary(d.bytes(d.length())); err != nil && d.err == nil {
			d.fail("bad time: %v", err)
		}
		return t
	case tagDuration:
		return time.Duration(d.varint())
	case tagStrings:
		n := d.length()
		if d.err != nil {
			return nil
		}
		s := make([]string, n)
		for i := range s {
			s[i] = d.str()
		}
		return s
	case tagList:
		n := d.length()
		if d.err != nil {
			return nil
		}
		l := make([]any, n)
		for i := range l {
			l[i] = d.value(depth + 1)
		}
		return l
	case tagMap:
		n := d.length()
		if d.err != nil {
			return nil
		}
		m := make(map[string]any, n)
		for range n {
			k := d.str()
			m[k] = d.value(depth + 1)
			if d.err != nil {
				return nil
			}
		}
		return m
	case tagRegistered:
		name := d.str()
		data := d.bytes(d.length())
		if d.err != nil {
			return nil
		}
		v, err := decodeRegistered(name, data)
		if err != nil {
			d.fail("value of type %q: %v", name, err)
		}
		return v
	default:
		d.fail("unknown value tag %d", tag)
		return nil
	}
}

// Registered types.

var registry struct {
	sync.RWMutex
	byName map[string]reflect.Type
	byType map[reflect.Type]string
}

// RegisterType lets values of type T be stored in sessions under the stable
// name name, which is written into each record: keep it unchanged across
// releases (a package path plus type name is a good choice).
//
// These types are built in and need no registration: nil, string, bool, all
// int, uint and float kinds, []byte, time.Time, time.Duration, []string, and
// []any and map[string]any holding built-in values. A registered type is
// encoded with its MarshalBinary method when it implements
// encoding.BinaryMarshaler (and *T implements encoding.BinaryUnmarshaler),
// otherwise with encoding/gob. Call RegisterType from an init function; it
// panics if name or T is already registered differently, which is a
// programming error.
func RegisterType[T any](name string) {
	t := reflect.TypeFor[T]()
	registry.Lock()
	defer registry.Unlock()
	if registry.byName == nil {
		registry.byName = make(map[string]reflect.Type)
		registry.byType = make(map[reflect.Type]string)
	}
	if old, ok := registry.byName[name]; ok && old != t {
		panic(fmt.Sprintf("usersessions: RegisterType: name %q already used for %v", name, old))
	}
	if old, ok := registry.byType[t]; ok && old != name {
		panic(fmt.Sprintf("usersessions: RegisterType: %v already registered as %q", t, old))
	}
	registry.byName[name] = t
	registry.byType[t] = name
}

func encodeRegistered(dst []byte, v any) ([]byte, error) {
	t := reflect.TypeOf(v)
	registry.RLock()
	name, ok := registry.byType[t]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %v (register it with RegisterType)", ErrUnsupportedType, t)
	}
	var data []byte
	if m, ok := v.(encoding.BinaryMarshaler); ok {
		var err error
		if data, err = m.MarshalBinary(); err != nil {
			return nil, fmt.Errorf("%v: %w", t, err)
		}
	} else {
		var buf bytes.Buffer
		// EncodeValue, not Encode: gob rejects a nil pointer passed as any.
		if err := gob.NewEncoder(&buf).EncodeValue(reflect.ValueOf(v)); err != nil {
			return nil, fmt.Errorf("%v: %w", t, err)
		}
		data = buf.Bytes()
	}
	dst = appendString(append(dst, byte(tagRegistered)), name)
	return appendString(dst, string(data)), nil
}

func decodeRegistered(name string, data []byte) (v any, err error) {
	registry.RLock()
	t, ok := registry.byName[name]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown type (register it with RegisterType)")
	}
	// A registered type's own decoder is outside our control: contain it.
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("decoder panicked: %v", p)
		}
	}()
	ptr := reflect.New(t)
	if u, ok := ptr.Interface().(encoding.BinaryUnmarshaler); ok {
		if _, ok := reflect.Zero(t).Interface().(encoding.BinaryMarshaler); ok {
			if err := u.UnmarshalBinary(data); err != nil {
				return nil, err
			}
			return ptr.Elem().Interface(), nil
		}
	}
	if err := gob.NewDecoder(bytes.NewReader(data)).DecodeValue(ptr); err != nil {
		return nil, err
	}
	return ptr.Elem().Interface(), nil
}
