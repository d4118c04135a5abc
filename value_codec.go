package usersessions

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"
)

// The value codec: how a session's values are encoded in the tail of a
// record (record.go leaves them as opaque bytes), and the registry of
// types apps add (RegisterType).

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

// encodeValue appends v's tag and payload. It is one case per supported
// type, in valueTag's order: as one switch it reads as the format's table,
// which splitting it would hide (hence its length).
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

// value reads one tag and its payload: encodeValue's table read back, one
// case per tag, kept as one switch for the same reason.
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
