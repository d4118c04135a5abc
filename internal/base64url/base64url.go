// Package base64url decodes unpadded URL-safe base64 without allocating:
// the text form of session IDs (package backend) and tokens (package
// usersessions), so both parse with the same strict rules.
package base64url

// value maps an ASCII byte to its 6-bit value, or 0xFF.
var value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// Decode decodes unpadded URL-safe base64 src into dst, which must
// be exactly the decoded size. It does not allocate (the standard decoder
// would need a []byte copy of the string), it decodes four characters at a
// time, and it rejects non-canonical input (stray low bits in the last
// character), so every value has exactly one spelling.
func Decode(dst []byte, src string) bool {
	if len(src) != (len(dst)*8+5)/6 {
		return false
	}
	n := 0
	i := 0
	for ; i+4 <= len(src); i += 4 {
		a, b, c, d := value[src[i]], value[src[i+1]], value[src[i+2]], value[src[i+3]]
		if (a|b|c|d)&0xC0 != 0 { // 0xFF marks a byte outside the alphabet
			return false
		}
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		dst[n], dst[n+1], dst[n+2] = byte(v>>16), byte(v>>8), byte(v)
		n += 3
	}
	switch rest := src[i:]; len(rest) {
	case 2: // 12 bits: one byte and four bits that must be zero
		a, b := value[rest[0]], value[rest[1]]
		v := uint32(a)<<6 | uint32(b)
		if (a|b)&0xC0 != 0 || v&0xF != 0 {
			return false
		}
		dst[n] = byte(v >> 4)
		n++
	case 3: // 18 bits: two bytes and two bits that must be zero
		a, b, c := value[rest[0]], value[rest[1]], value[rest[2]]
		v := uint32(a)<<12 | uint32(b)<<6 | uint32(c)
		if (a|b|c)&0xC0 != 0 || v&0x3 != 0 {
			return false
		}
		dst[n], dst[n+1] = byte(v>>10), byte(v>>2)
		n += 2
	}
	return n == len(dst)
}
