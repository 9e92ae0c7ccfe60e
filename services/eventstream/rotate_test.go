package eventstream

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// legacySeal writes a secret the way releases before keyrings did (format
// 1: version byte, nonce, sealed text; no key id).
func legacySeal(t *testing.T, key []byte, plaintext, ad string) []byte {
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

// TestRotateSecrets: `eventstream rotate-secrets` re-encrypts every secret
// (legacy-format ones included) with the first key of SECRETS_KEYS, so the
// old key can then be dropped; a second run changes nothing; a row no key
// opens is reported, left alone, and makes the command fail.
func TestRotateSecrets(t *testing.T) {
	ctx := context.Background()
	store, db := testenv.NewStore(t) // seals with testenv.TestKey: the "old" key
	oldKey := testenv.TestKey
	newKey := bytes.Repeat([]byte{0x5a}, 32)
	lostKey := bytes.Repeat([]byte{0x77}, 32)
	if err := store.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	hook := &catalog.Integration{Tenant: "acme", ID: "hook", Type: catalog.TypePermanent,
		Webhook: &catalog.Webhook{CallbackURL: "https://erp.example.com/events", APIKey: "api-key-0001", SigningSecret: "signing-secret-0001"}}
	bucket := &catalog.Integration{Tenant: "acme", ID: "bucket", Type: catalog.TypePermanent,
		S3: &catalog.S3Target{AccessKeyID: "AKIA", SecretAccessKey: "aws-secret-0001", Region: "eu-central-1", Bucket: "b-1"}}
	legacy := &catalog.Integration{Tenant: "acme", ID: "legacy", Type: catalog.TypePermanent,
		Webhook: &catalog.Webhook{CallbackURL: "https://old.example.com/events", APIKey: "placeholder"}}
	lost := &catalog.Integration{Tenant: "acme", ID: "lost", Type: catalog.TypePermanent,
		Webhook: &catalog.Webhook{CallbackURL: "https://lost.example.com/events", APIKey: "placeholder"}}
	for _, in := range []*catalog.Integration{hook, bucket, legacy, lost} {
		if err := store.CreateIntegration(ctx, in, 10); err != nil {
			t.Fatal(err)
		}
	}
	// A row written by a release before keyrings, and one sealed with a key
	// nobody has any more.
	if _, err := db.Pool.Exec(ctx, `UPDATE integrations SET api_key_enc = $1 WHERE id = 'legacy'`,
		legacySeal(t, oldKey, "legacy-key-0001", "acme/legacy/api_key")); err != nil {
		t.Fatal(err)
	}
	gone, _ := secrets.New(lostKey)
	if _, err := db.Pool.Exec(ctx, `UPDATE integrations SET api_key_enc = $1 WHERE id = 'lost'`,
		gone.Seal("lost-key-0001", "acme/lost/api_key")); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{
		"DATABASE_URL":         db.URL,
		"SECRETS_KEYS":         hex.EncodeToString(newKey) + "," + hex.EncodeToString(oldKey),
		"EVENTSTREAM_DATA_DIR": t.TempDir(),
	}
	run := func() (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(ctx, []string{"rotate-secrets", "--batch", "2"}, nil, &out, &errOut, func(k string) string { return env[k] })
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run()
	if code != 1 || !strings.Contains(out, "integrations: 4; secrets re-encrypted with the first key: 4; already current: 0; unreadable: 1") ||
		!strings.Contains(errOut, "acme/lost") {
		t.Fatalf("first run: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// The new key alone now reads every rotated row.
	onlyNew, err := secrets.New(newKey)
	if err != nil {
		t.Fatal(err)
	}
	fresh := catalog.New(db.Pool, onlyNew)
	for id, want := range map[string]string{"hook": "api-key-0001", "legacy": "legacy-key-0001"} {
		in, err := fresh.GetIntegration(ctx, "acme", id)
		if err != nil || in.Webhook.APIKey != want {
			t.Fatalf("%s with the new key only: %+v, %v", id, in, err)
		}
	}
	if in, err := fresh.GetIntegration(ctx, "acme", "hook"); err != nil || in.Webhook.SigningSecret != "signing-secret-0001" {
		t.Fatalf("signing secret with the new key only: %v", err)
	}
	if in, err := fresh.GetIntegration(ctx, "acme", "bucket"); err != nil || in.S3.SecretAccessKey != "aws-secret-0001" {
		t.Fatalf("S3 secret with the new key only: %v", err)
	}
	// The unreadable row is reported, not hidden, and does not hide the others.
	list, err := fresh.ListIntegrations(ctx, "acme")
	var ue *catalog.UnreadableError
	if len(list) != 4 || !errors.As(err, &ue) || len(ue.Integrations) != 1 || ue.Integrations[0] != "acme/lost" ||
		!errors.Is(err, catalog.ErrSecretsUnreadable) || !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("list with one unreadable row: %d integrations, %v", len(list), err)
	}

	// Idempotent: nothing left to rewrite.
	code, out, _ = run()
	if code != 1 || !strings.Contains(out, "secrets re-encrypted with the first key: 0; already current: 4; unreadable: 1") {
		t.Fatalf("second run: exit %d: %s", code, out)
	}
	// Once the lost row is gone, the run succeeds.
	if err := store.DeleteIntegration(ctx, "acme", "lost"); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(); code != 0 || !strings.Contains(out, "unreadable: 0") {
		t.Fatalf("third run: exit %d\n%s\n%s", code, out, errOut)
	}
	// SECRETS_KEY alone still works as a ring of one.
	delete(env, "SECRETS_KEYS")
	env["SECRETS_KEY"] = hex.EncodeToString(newKey)
	if code, out, errOut := run(); code != 0 || !strings.Contains(out, "already current: 4") {
		t.Fatalf("with SECRETS_KEY: exit %d\n%s\n%s", code, out, errOut)
	}
}
