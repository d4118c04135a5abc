package httpx

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// DBSC proofs. A browser proves that it holds a session's private key by
// signing a JWT ("dbsc+jwt") over the server's challenge: at registration
// the JWT's header also carries the new public key (a JWK), at refresh it
// is checked against the key stored with the session. Only the two
// algorithms of the draft are accepted, ES256 (ECDSA P-256, the signature
// being r||s, 64 bytes) and RS256 (RSA PKCS #1 v1.5 with SHA-256), and
// everything is done with the standard library.

// maxProofLength bounds a proof before any decoding: a registration proof
// with a 4096-bit RSA key is under 2 KiB.
const maxProofLength = 8 << 10

// RSA keys outside these sizes are refused: smaller ones are weak, larger
// ones only cost verification time.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// errProof reports a proof that cannot be parsed or does not verify; the
// wrapped message says why (for the log, never for the client).
var errProof = errors.New("invalid DBSC proof")

// dbscProof is a parsed, not yet verified, proof.
type dbscProof struct {
	alg    string           // "ES256" or "RS256"
	key    crypto.PublicKey // the JWK it carries (registration), or nil
	jti    string           // the challenge it signs
	signed []byte           // header.payload: what the signature covers
	sig    []byte
}

// proofHeader is the part of a proof's JOSE header that is read.
type proofHeader struct {
	Alg string          `json:"alg"`
	Typ string          `json:"typ"`
	JWK json.RawMessage `json:"jwk"`
}

// proofClaims is the part of a proof's payload that is read. Chromium's
// first origin trial put the public key in the payload, as "key".
type proofClaims struct {
	JTI *string         `json:"jti"`
	JWK json.RawMessage `json:"jwk"`
	Key json.RawMessage `json:"key"`
}

// parseProof parses the value of a Secure-Session-Response header: the JWT
// itself (what Chrome sends) or the JWT as a structured-field string (what
// the draft says), parameters ignored.
func parseProof(value string) (*dbscProof, error) {
	if len(value) > maxProofLength {
		return nil, fmt.Errorf("%w: %d bytes", errProof, len(value))
	}
	jwt, ok := headerItem(value)
	if !ok {
		return nil, fmt.Errorf("%w: not a string", errProof)
	}
	head, rest, ok1 := strings.Cut(jwt, ".")
	body, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return nil, fmt.Errorf("%w: not three dot-separated parts", errProof)
	}
	var h proofHeader
	if err := decodeJSONPart(head, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", errProof, err)
	}
	if !strings.EqualFold(h.Typ, "dbsc+jwt") {
		return nil, fmt.Errorf("%w: typ %q, want dbsc+jwt", errProof, h.Typ)
	}
	var c proofClaims
	if err := decodeJSONPart(body, &c); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", errProof, err)
	}
	if c.JTI == nil {
		return nil, fmt.Errorf("%w: no jti", errProof)
	}
	p := &dbscProof{alg: h.Alg, jti: *c.JTI, signed: []byte(jwt[:len(head)+1+len(body)])}
	var err error
	if p.sig, err = decodeSegment(sig); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", errProof, err)
	}
	if err := checkSignatureSize(p.alg, len(p.sig)); err != nil {
		return nil, err
	}
	if raw := firstJSON(h.JWK, c.JWK, c.Key); raw != nil {
		if p.key, err = parseJWK(raw, p.alg); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// checkSignatureSize refuses an algorithm other than ES256 and RS256 ("none"
// included) and a signature that cannot be one of its.
func checkSignatureSize(alg string, n int) error {
	switch {
	case alg == "ES256" && n == 64:
	case alg == "RS256" && n >= minRSABits/8 && n <= maxRSABits/8:
	case alg != "ES256" && alg != "RS256":
		return fmt.Errorf("%w: algorithm %q, want ES256 or RS256", errProof, alg)
	default:
		return fmt.Errorf("%w: %d-byte %s signature", errProof, n, alg)
	}
	return nil
}

// verify checks the proof's signature with key, which must be of the
// proof's algorithm.
func (p *dbscProof) verify(key crypto.PublicKey) error {
	sum := sha256.Sum256(p.signed)
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if p.alg != "ES256" || k.Curve != elliptic.P256() {
			return fmt.Errorf("%w: %s proof for an ECDSA key", errProof, p.alg)
		}
		r, s := new(big.Int).SetBytes(p.sig[:32]), new(big.Int).SetBytes(p.sig[32:])
		if !ecdsa.Verify(k, sum[:], r, s) {
			return fmt.Errorf("%w: bad ES256 signature", errProof)
		}
	case *rsa.PublicKey:
		if p.alg != "RS256" {
			return fmt.Errorf("%w: %s proof for an RSA key", errProof, p.alg)
		}
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], p.sig); err != nil {
			return fmt.Errorf("%w: bad RS256 signature", errProof)
		}
	default:
		return fmt.Errorf("%w: unsupported key %T", errProof, key)
	}
	return nil
}

// jwk is the part of a JSON Web Key (RFC 7517) that is read.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// parseJWK reads a public key for alg: a P-256 EC key for ES256, an RSA key
// of 2048 to 8192 bits for RS256.
func parseJWK(raw json.RawMessage, alg string) (crypto.PublicKey, error) {
	var k jwk
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("%w: jwk: %v", errProof, err)
	}
	switch {
	case alg == "ES256" && k.Kty == "EC" && k.Crv == "P-256":
		x, errX := decodeSegment(k.X)
		y, errY := decodeSegment(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("%w: jwk: P-256 coordinates", errProof)
		}
		key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("%w: jwk: %v", errProof, err)
		}
		return key, nil
	case alg == "RS256" && k.Kty == "RSA":
		return parseRSAJWK(k)
	}
	return nil, fmt.Errorf("%w: jwk of type %q (%q) for %s", errProof, k.Kty, k.Crv, alg)
}

// parseRSAJWK reads the modulus and exponent of an RSA JWK.
func parseRSAJWK(k jwk) (crypto.PublicKey, error) {
	n, errN := decodeSegment(k.N)
	e, errE := decodeSegment(k.E)
	if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("%w: jwk: RSA modulus or exponent", errProof)
	}
	key := &rsa.PublicKey{N: new(big.Int).SetBytes(n)}
	for _, b := range e {
		key.E = key.E<<8 | int(b)
	}
	if bits := key.N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("%w: jwk: %d-bit RSA key", errProof, bits)
	}
	if key.E < 3 || key.E%2 == 0 {
		return nil, fmt.Errorf("%w: jwk: RSA exponent %d", errProof, key.E)
	}
	return key, nil
}

// decodeJSONPart decodes a base64url JWT part holding a JSON object.
func decodeJSONPart(part string, v any) error {
	b, err := decodeSegment(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// decodeSegment decodes base64url, with or without padding (JWS has none;
// a tolerant reader takes either).
func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// firstJSON returns the first of raws that is set and not JSON null.
func firstJSON(raws ...json.RawMessage) json.RawMessage {
	for _, r := range raws {
		if len(r) > 0 && string(r) != "null" {
			return r
		}
	}
	return nil
}
