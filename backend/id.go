package backend

import (
	"encoding/base64"

	"github.com/usersessions/usersessions/internal/base64url"
)

// idBytes is the length of an ID in bytes.
const idBytes = 16

// IDLength is the length of an ID's text form (Session.ID): 22 characters.
const IDLength = (idBytes*8 + 5) / 6

// ID is a session's key in storage: 6 bytes of creation time in
// milliseconds (so IDs sort roughly by age, which keeps inserts and cleanup
// local) and 10 random bytes. Its text form, String, is Session.ID.
type ID [idBytes]byte

// ParseID parses the text form of an ID (Session.ID). It accepts only the
// canonical spelling, so every ID has exactly one.
func ParseID(s string) (id ID, ok bool) {
	if len(s) != IDLength {
		return id, false
	}
	ok = base64url.Decode(id[:], s)
	return id, ok
}

// String returns the ID's text form: unpadded URL-safe base64.
func (id ID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }
