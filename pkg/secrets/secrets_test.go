package secrets_test

import (
	"errors"
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
