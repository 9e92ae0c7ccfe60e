// Package secrets encrypts integration secrets (webhook api keys, signing secrets,
// AWS secret keys) at rest with AES-256-GCM, and redacts them for display.
//
// A ciphertext is bound to where it is stored through the additional data (for
// example "tenant/integration/api_key"), so a value copied to another row does
// not decrypt. Decrypting with the wrong key fails with ErrWrongKey instead of
// returning garbage.
//
// Keys rotate through a keyring (SECRETS_KEYS): the first key encrypts, every
// key decrypts. A ciphertext names the key that made it (format 2: version
// byte 2, a 4-byte key id, the 12-byte nonce, the sealed text), so opening
// never guesses; ciphertexts of format 1 (version byte 1, nonce, sealed text,
// written before keyrings) carry no key id and are tried with every key.
// `eventstream rotate-secrets` rewrites every stored secret with the first key.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Ciphertext format versions.
const (
	versionLegacy byte = 1 // version, nonce, sealed; additional data = ad
	versionKeyed  byte = 2 // version, key id, nonce, sealed; additional data = version+key id+ad
	keyIDLen           = 4
)

// ErrWrongKey means a ciphertext was not made with any key of the ring (or was
// tampered with).
var ErrWrongKey = errors.New("decrypting secret: wrong encryption key or corrupted ciphertext")

// ErrUnknownKey means a ciphertext names a key the ring does not hold (a key
// removed from SECRETS_KEYS before every row was rotated). It wraps ErrWrongKey.
var ErrUnknownKey = fmt.Errorf("%w (made with a key that is not in SECRETS_KEYS)", ErrWrongKey)

// Box encrypts with the first key of its ring and decrypts with any.
type Box struct {
	keys []ringKey
}

type ringKey struct {
	id   [keyIDLen]byte
	aead cipher.AEAD
}

// ParseKey decodes a 32-byte key given as 64 hex characters or standard base64.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	return nil, errors.New("encryption key must be 32 bytes, as 64 hex characters or base64")
}

// ParseKeys decodes a comma-separated keyring (each key as ParseKey reads it),
// first key first. Empty entries are skipped; at least one key is required.
func ParseKeys(s string) ([][]byte, error) {
	var out [][]byte
	for i, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, err := ParseKey(part)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("no key given")
	}
	return out, nil
}

// KeysFromEnv reads the keyring: SECRETS_KEYS (comma-separated, the first
// encrypts) when set, else SECRETS_KEY as a ring of one. It returns nil, nil
// when neither is set.
func KeysFromEnv(getenv func(string) string) ([][]byte, error) {
	if v := strings.TrimSpace(getenv("SECRETS_KEYS")); v != "" {
		keys, err := ParseKeys(v)
		if err != nil {
			return nil, fmt.Errorf("SECRETS_KEYS: %w", err)
		}
		return keys, nil
	}
	if v := strings.TrimSpace(getenv("SECRETS_KEY")); v != "" {
		k, err := ParseKey(v)
		if err != nil {
			return nil, fmt.Errorf("SECRETS_KEY: %w", err)
		}
		return [][]byte{k}, nil
	}
	return nil, nil
}

// KeyID is the 4-byte id a key is named by in ciphertexts: the start of a
// SHA-256 over a fixed label and the key (it reveals nothing usable about the key).
func KeyID(key []byte) [keyIDLen]byte {
	h := sha256.New()
	h.Write([]byte("eventstream secrets key id\x00"))
	h.Write(key)
	var id [keyIDLen]byte
	copy(id[:], h.Sum(nil))
	return id
}

// New returns a Box for a single 32-byte key.
func New(key []byte) (*Box, error) { return NewRing([][]byte{key}) }

// NewRing returns a Box that encrypts with keys[0] and decrypts with any key.
func NewRing(keys [][]byte) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("encryption keyring is empty")
	}
	b := &Box{}
	seen := map[[keyIDLen]byte]bool{}
	for i, key := range keys {
		if len(key) != 32 {
			return nil, fmt.Errorf("encryption key %d must be 32 bytes, got %d", i+1, len(key))
		}
		id := KeyID(key)
		if seen[id] {
			return nil, fmt.Errorf("encryption key %d is listed twice (or two keys share an id)", i+1)
		}
		seen[id] = true
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("creating cipher: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("creating GCM: %w", err)
		}
		b.keys = append(b.keys, ringKey{id: id, aead: aead})
	}
	return b, nil
}

// Seal encrypts plaintext bound to context ad, with the ring's first key.
func (b *Box) Seal(plaintext, ad string) []byte {
	k := b.keys[0]
	head := 1 + keyIDLen
	n := k.aead.NonceSize()
	out := make([]byte, head+n, head+n+len(plaintext)+k.aead.Overhead())
	out[0] = versionKeyed
	copy(out[1:head], k.id[:])
	if _, err := rand.Read(out[head : head+n]); err != nil {
		panic(fmt.Sprintf("reading random nonce: %v", err)) // crypto/rand never fails on Linux
	}
	return k.aead.Seal(out, out[head:head+n], []byte(plaintext), keyedAD(out[:head], ad))
}

func keyedAD(head []byte, ad string) []byte {
	return append(append(make([]byte, 0, len(head)+len(ad)), head...), ad...)
}

// Open decrypts a ciphertext made by Seal (of this ring's keys) with the same
// ad, or one of the legacy single-key format.
func (b *Box) Open(ciphertext []byte, ad string) (string, error) {
	if len(ciphertext) == 0 {
		return "", ErrWrongKey
	}
	switch ciphertext[0] {
	case versionKeyed:
		head := 1 + keyIDLen
		if len(ciphertext) < head {
			return "", ErrWrongKey
		}
		k, ok := b.key(ciphertext[1:head])
		if !ok {
			return "", ErrUnknownKey
		}
		n := k.aead.NonceSize()
		if len(ciphertext) < head+n+k.aead.Overhead() {
			return "", ErrWrongKey
		}
		pt, err := k.aead.Open(nil, ciphertext[head:head+n], ciphertext[head+n:], keyedAD(ciphertext[:head], ad))
		if err != nil {
			return "", ErrWrongKey
		}
		return string(pt), nil
	case versionLegacy:
		for _, k := range b.keys {
			n := k.aead.NonceSize()
			if len(ciphertext) < 1+n+k.aead.Overhead() {
				return "", ErrWrongKey
			}
			if pt, err := k.aead.Open(nil, ciphertext[1:1+n], ciphertext[1+n:], []byte(ad)); err == nil {
				return string(pt), nil
			}
		}
	}
	return "", ErrWrongKey
}

func (b *Box) key(id []byte) (ringKey, bool) {
	for _, k := range b.keys {
		if string(k.id[:]) == string(id) {
			return k, true
		}
	}
	return ringKey{}, false
}

// IsCurrent reports whether ciphertext is sealed in the current format with
// the ring's first key, so rotation can skip it.
func (b *Box) IsCurrent(ciphertext []byte) bool {
	return len(ciphertext) > 1+keyIDLen && ciphertext[0] == versionKeyed &&
		string(ciphertext[1:1+keyIDLen]) == string(b.keys[0].id[:])
}

// Redact shows a secret without revealing it: "****" plus its last 4 characters
// (or only "****" when it is 8 characters or shorter, where 4 would reveal half).
func Redact(s string) string {
	if s == "" {
		return ""
	}
	if len(s) <= 8 {
		return "****"
	}
	return "****" + s[len(s)-4:]
}

// IsRedacted reports whether s looks like the output of Redact, so an API can
// refuse a client echoing a redacted value back as if it were the secret.
func IsRedacted(s string) bool { return strings.HasPrefix(s, "****") }
