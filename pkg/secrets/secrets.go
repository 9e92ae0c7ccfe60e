// Package secrets encrypts integration secrets (webhook api keys, signing secrets,
// AWS secret keys) at rest with AES-256-GCM, and redacts them for display.
//
// A ciphertext is bound to where it is stored through the additional data (for
// example "tenant/integration/api_key"), so a value copied to another row does
// not decrypt. Decrypting with the wrong key fails with ErrWrongKey instead of
// returning garbage.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// version prefixes every ciphertext so the format can evolve (key rotation).
const version byte = 1

// ErrWrongKey means a ciphertext was not made with this key (or was tampered with).
var ErrWrongKey = errors.New("decrypting secret: wrong encryption key or corrupted ciphertext")

// Box encrypts and decrypts with one key.
type Box struct {
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

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("encryption key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("creating cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("creating GCM: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext bound to context ad.
func (b *Box) Seal(plaintext, ad string) []byte {
	out := make([]byte, 1+b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		panic(fmt.Sprintf("reading random nonce: %v", err)) // crypto/rand never fails on Linux
	}
	return b.aead.Seal(out, out[1:1+b.aead.NonceSize()], []byte(plaintext), []byte(ad))
}

// Open decrypts a ciphertext made by Seal with the same ad.
func (b *Box) Open(ciphertext []byte, ad string) (string, error) {
	n := b.aead.NonceSize()
	if len(ciphertext) < 1+n+b.aead.Overhead() || ciphertext[0] != version {
		return "", ErrWrongKey
	}
	pt, err := b.aead.Open(nil, ciphertext[1:1+n], ciphertext[1+n:], []byte(ad))
	if err != nil {
		return "", ErrWrongKey
	}
	return string(pt), nil
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
