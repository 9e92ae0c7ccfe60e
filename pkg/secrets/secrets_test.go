package secrets_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/eventstream/eventstream/pkg/secrets"
)

func TestSealOpen(t *testing.T) {
	k1, _ := secrets.ParseKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	k2, _ := secrets.ParseKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if string(k1) != string(k2) {
		t.Fatal("hex and base64 forms of one key differ")
	}
	b, _ := secrets.New(k1)
	ct := b.Seal("s3cr3t-value", "acme/erp/api_key")
	if got, err := b.Open(ct, "acme/erp/api_key"); err != nil || got != "s3cr3t-value" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := b.Open(ct, "other/erp/api_key"); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("ciphertext moved to another row decrypted: %v", err)
	}
	other, _ := secrets.New([]byte("ffffffffffffffffffffffffffffffff"))
	if _, err := other.Open(ct, "acme/erp/api_key"); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("wrong key: err = %v", err)
	}
	if _, err := secrets.ParseKey("short"); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9": "****VCJ9",
		"12345678":                             "****",
		"":                                     "",
	} {
		if got := secrets.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// sealV1 writes the format of the single-key Box that came before keyrings
// (version 1, nonce, sealed), an independent implementation of it, so rows
// stored by earlier releases are known to stay readable.
func sealV1(t *testing.T, key []byte, plaintext, ad string) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 1+aead.NonceSize())
	out[0] = 1
	if _, err := rand.Read(out[1:]); err != nil {
		t.Fatal(err)
	}
	return aead.Seal(out, out[1:], []byte(plaintext), []byte(ad))
}

func TestKeyring(t *testing.T) {
	oldKey := bytes.Repeat([]byte{1}, 32)
	newKey := bytes.Repeat([]byte{2}, 32)
	otherKey := bytes.Repeat([]byte{3}, 32)
	old, _ := secrets.New(oldKey)
	ring, err := secrets.NewRing([][]byte{newKey, oldKey})
	if err != nil {
		t.Fatal(err)
	}
	const ad = "acme/erp/api_key"

	t.Run("legacy format of every key opens", func(t *testing.T) {
		for _, k := range [][]byte{oldKey, newKey} {
			got, err := ring.Open(sealV1(t, k, "v1-secret", ad), ad)
			if err != nil || got != "v1-secret" {
				t.Fatalf("legacy ciphertext: %q, %v", got, err)
			}
		}
		if _, err := ring.Open(sealV1(t, otherKey, "x", ad), ad); !errors.Is(err, secrets.ErrWrongKey) {
			t.Fatalf("legacy ciphertext of a key not in the ring: %v", err)
		}
		if ring.IsCurrent(sealV1(t, newKey, "x", ad)) {
			t.Fatal("a legacy ciphertext is current")
		}
	})

	t.Run("old key's ciphertext opens; new ones use the first key", func(t *testing.T) {
		ct := old.Seal("from-old", ad)
		if got, err := ring.Open(ct, ad); err != nil || got != "from-old" {
			t.Fatalf("old key's ciphertext: %q, %v", got, err)
		}
		if ring.IsCurrent(ct) || !old.IsCurrent(ct) {
			t.Fatal("IsCurrent does not follow the first key")
		}
		fresh := ring.Seal("fresh", ad)
		if !ring.IsCurrent(fresh) {
			t.Fatal("Seal did not use the first key")
		}
		id := secrets.KeyID(newKey)
		if fresh[0] != 2 || !bytes.Equal(fresh[1:5], id[:]) {
			t.Fatalf("ciphertext header % x, want version 2 and key id % x", fresh[:5], id)
		}
		// The old key alone cannot open it, and says why.
		if _, err := old.Open(fresh, ad); !errors.Is(err, secrets.ErrUnknownKey) || !errors.Is(err, secrets.ErrWrongKey) {
			t.Fatalf("ring ciphertext with the old key only: %v", err)
		}
		// Binding: another row does not open it; a swapped key id does not either.
		if _, err := ring.Open(fresh, "other/erp/api_key"); !errors.Is(err, secrets.ErrWrongKey) {
			t.Fatalf("moved ciphertext opened: %v", err)
		}
		swapped := bytes.Clone(fresh)
		oid := secrets.KeyID(oldKey)
		copy(swapped[1:5], oid[:])
		if _, err := ring.Open(swapped, ad); !errors.Is(err, secrets.ErrWrongKey) {
			t.Fatalf("ciphertext with a swapped key id opened: %v", err)
		}
	})

	t.Run("bad rings", func(t *testing.T) {
		if _, err := secrets.NewRing(nil); err == nil {
			t.Fatal("empty ring accepted")
		}
		if _, err := secrets.NewRing([][]byte{newKey, newKey}); err == nil {
			t.Fatal("duplicate key accepted")
		}
		if _, err := secrets.NewRing([][]byte{newKey, []byte("short")}); err == nil {
			t.Fatal("short key accepted")
		}
	})
}

func TestKeysFromEnv(t *testing.T) {
	k1 := "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	k2 := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // the same key, base64
	k3 := strings.Repeat("ab", 32)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	keys, err := secrets.KeysFromEnv(env(map[string]string{"SECRETS_KEY": k1}))
	if err != nil || len(keys) != 1 {
		t.Fatalf("SECRETS_KEY alone: %d keys, %v", len(keys), err)
	}
	keys, err = secrets.KeysFromEnv(env(map[string]string{"SECRETS_KEYS": k3 + ", " + k1, "SECRETS_KEY": k1}))
	if err != nil || len(keys) != 2 || hex.EncodeToString(keys[0]) != k3 {
		t.Fatalf("SECRETS_KEYS: %d keys, %v", len(keys), err)
	}
	if keys, err := secrets.KeysFromEnv(env(nil)); keys != nil || err != nil {
		t.Fatalf("nothing set: %v, %v", keys, err)
	}
	for _, bad := range []string{"short", k1 + ",nope", " , "} {
		if _, err := secrets.KeysFromEnv(env(map[string]string{"SECRETS_KEYS": bad})); err == nil {
			t.Errorf("SECRETS_KEYS=%q accepted", bad)
		}
	}
	if _, err := secrets.NewRing([][]byte{mustKey(t, k1), mustKey(t, k2)}); err == nil {
		t.Error("the same key twice (hex and base64) accepted")
	}
}

func mustKey(t *testing.T, s string) []byte {
	t.Helper()
	k, err := secrets.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func FuzzOpen(f *testing.F) {
	ring, _ := secrets.NewRing([][]byte{bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{1}, 32)})
	f.Add(ring.Seal("secret", "a/b/c"), "a/b/c")
	f.Add([]byte{1, 2, 3}, "")
	f.Add([]byte{2}, "x")
	f.Fuzz(func(t *testing.T, ct []byte, ad string) {
		pt, err := ring.Open(ct, ad)
		if err != nil && pt != "" {
			t.Fatal("plaintext returned with an error")
		}
		if err == nil {
			// Whatever opens re-seals and opens to the same text.
			if again, err := ring.Open(ring.Seal(pt, ad), ad); err != nil || again != pt {
				t.Fatalf("round trip: %q, %v", again, err)
			}
		}
	})
}

func FuzzParseKeys(f *testing.F) {
	f.Add("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	f.Add(",,")
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := secrets.ParseKeys(s)
		if err != nil {
			return
		}
		for _, k := range keys {
			if len(k) != 32 {
				t.Fatalf("key of %d bytes parsed", len(k))
			}
		}
	})
}
