package httpx

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/usersessions/usersessions"
)

// The binding of a session to a device lives in the session itself, under
// reserved keys, and is saved with it by the store like any other value
// (as "httpx.authAt" is): no new table, and every backend has it.
const (
	// dbscKeyKey holds the device's public key (PKIX, DER): its presence
	// makes the session device-bound.
	dbscKeyKey = "httpx.dbsc.key"
	// dbscAlgKey holds the key's algorithm, "ES256" or "RS256".
	dbscAlgKey = "httpx.dbsc.alg"
	// dbscSecretKey holds 32 random bytes, made at sign-in, that key the
	// MACs of the session's challenges and bound cookies. It never leaves
	// the server.
	dbscSecretKey = "httpx.dbsc.secret"
	// dbscUsedKey holds the issue time (Unix nanoseconds) of the last
	// challenge a refresh used: a proof is accepted once.
	dbscUsedKey = "httpx.dbsc.used"
)

// secretSize is the size of a session's DBSC secret, and nonceSize that
// of a challenge's random part.
const (
	secretSize = 32
	nonceSize  = 16
)

// What a MAC is for, so that no token made for one use is accepted for
// another.
const (
	purposeRegister byte = 'r' // a registration challenge
	purposeRefresh  byte = 'f' // a refresh challenge
	purposeCookie   byte = 'c' // a bound cookie
)

// DeviceBound reports whether the session is bound to a device by DBSC:
// its browser registered a key, and a request needs the short-lived bound
// cookie that only that browser can refresh (see DBSCOptions).
func DeviceBound(s *usersessions.Session) bool {
	_, ok := usersessions.Value[[]byte](s, dbscKeyKey)
	return ok
}

// boundKey returns the public key a session is bound to and its algorithm.
func boundKey(s *usersessions.Session) (crypto.PublicKey, string, bool) {
	der, ok1 := usersessions.Value[[]byte](s, dbscKeyKey)
	alg, ok2 := usersessions.Value[string](s, dbscAlgKey)
	if !ok1 || !ok2 {
		return nil, "", false
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, "", false
	}
	return key, alg, true
}

// sessionSecret returns the session's DBSC secret, nil if it has none
// (it signed in before DBSC was turned on, or the value was tampered with).
func sessionSecret(s *usersessions.Session) []byte {
	b, _ := usersessions.Value[[]byte](s, dbscSecretKey)
	if len(b) != secretSize {
		return nil
	}
	return b
}

// resetBinding forgets the session's device and gives it a new secret:
// what a sign-in does, so that the browser signing in registers afresh.
func resetBinding(s *usersessions.Session) []byte {
	s.Delete(dbscKeyKey)
	s.Delete(dbscAlgKey)
	s.Delete(dbscUsedKey)
	secret := make([]byte, secretSize)
	rand.Read(secret) // never fails (crypto/rand)
	s.Set(dbscSecretKey, secret)
	return secret
}

// dbscMAC authenticates data for one purpose and one session.
func dbscMAC(secret []byte, purpose byte, id string, data []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte{purpose})
	h.Write([]byte(id))
	h.Write(data)
	return h.Sum(nil)
}

// newChallenge makes a challenge for session id: its issue time, random
// bytes, and their MAC, base64url. The server keeps nothing: the MAC shows
// it made the challenge, the time how old it is.
func newChallenge(secret []byte, purpose byte, id string, now time.Time) string {
	b := make([]byte, 8+nonceSize, 8+nonceSize+sha256.Size)
	binary.BigEndian.PutUint64(b, uint64(now.UnixNano()))
	rand.Read(b[8:])
	return base64.RawURLEncoding.EncodeToString(append(b, dbscMAC(secret, purpose, id, b)...))
}

// checkChallenge returns the issue time (Unix nanoseconds) of a challenge
// made for session id and purpose, if it is at most maxAge old.
func checkChallenge(secret []byte, purpose byte, id, challenge string, now time.Time, maxAge time.Duration) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(challenge)
	if err != nil || len(b) != 8+nonceSize+sha256.Size {
		return 0, false
	}
	data, mac := b[:8+nonceSize], b[8+nonceSize:]
	if !hmac.Equal(mac, dbscMAC(secret, purpose, id, data)) {
		return 0, false
	}
	issued := int64(binary.BigEndian.Uint64(data))
	age := now.Sub(time.Unix(0, issued))
	// A little room for a clock that steps back between two servers.
	return issued, age >= -time.Minute && age <= maxAge
}

// boundCookieValue makes the value of a bound cookie for session id that
// is good until expires: the expiry (Unix seconds) and its MAC, base64url.
func boundCookieValue(secret []byte, id string, expires time.Time) string {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+sha256.Size), uint64(expires.Unix()))
	return base64.RawURLEncoding.EncodeToString(append(b, dbscMAC(secret, purposeCookie, id, b)...))
}

// checkBoundCookie reports whether value is a bound cookie of session id
// that has not expired at now. grace covers the time between the browser
// dropping it and the server seeing its last request.
func checkBoundCookie(secret []byte, id, value string, now time.Time, grace time.Duration) bool {
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) != 8+sha256.Size {
		return false
	}
	if !hmac.Equal(b[8:], dbscMAC(secret, purposeCookie, id, b[:8])) {
		return false
	}
	expires := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	return now.Before(expires.Add(grace))
}
