package catalog_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestSecretsEncryptedAtRestAndWrongKeyFails(t *testing.T) {
	ctx := context.Background()
	store, db := testenv.NewStore(t)
	if err := store.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	in := &catalog.Integration{Tenant: "acme", ID: "erp-1", Type: catalog.TypePermanent,
		Webhook: &catalog.Webhook{CallbackURL: "https://example.com/hook", APIKey: "super-secret-api-key"}}
	if err := store.CreateIntegration(ctx, in, 10); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := db.Pool.QueryRow(ctx, `SELECT api_key_enc FROM integrations WHERE id = 'erp-1'`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || containsBytes(raw, []byte("super-secret-api-key")) {
		t.Fatalf("api key not encrypted at rest: %q", raw)
	}
	got, err := store.GetIntegration(ctx, "acme", "erp-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Webhook.APIKey != "super-secret-api-key" {
		t.Fatalf("api key round trip = %q", got.Webhook.APIKey)
	}
	otherBox, _ := secrets.New([]byte("ffffffffffffffffffffffffffffffff"))
	wrong := catalog.New(db.Pool, otherBox)
	if _, err := wrong.GetIntegration(ctx, "acme", "erp-1"); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("reading with the wrong key: err = %v, want ErrWrongKey", err)
	}
}

func TestTenantIsolationAndLimit(t *testing.T) {
	ctx := context.Background()
	store, _ := testenv.NewStore(t)
	for _, tn := range []string{"a", "b"} {
		if err := store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(tenant, id string) *catalog.Integration {
		return &catalog.Integration{Tenant: tenant, ID: id, Type: catalog.TypePermanent,
			Webhook: &catalog.Webhook{CallbackURL: "https://example.com/" + id}}
	}
	for _, id := range []string{"x-1", "x-2"} {
		if err := store.CreateIntegration(ctx, mk("a", id), 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.CreateIntegration(ctx, mk("a", "x-3"), 2); !errors.Is(err, catalog.ErrLimitReached) {
		t.Fatalf("third integration: err = %v, want ErrLimitReached", err)
	}
	if err := store.CreateIntegration(ctx, mk("a", "x-1"), 10); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("duplicate: err = %v, want ErrConflict", err)
	}
	if _, err := store.GetIntegration(ctx, "b", "x-1"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("other tenant read: err = %v, want ErrNotFound", err)
	}
	if err := store.DeleteIntegration(ctx, "b", "x-1"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("other tenant delete: err = %v, want ErrNotFound", err)
	}
	if err := store.CreateIntegration(ctx, mk("b", "x-1"), 10); err != nil {
		t.Fatalf("same id in another tenant: %v", err)
	}
}

func containsBytes(haystack, needle []byte) bool {
	for i := 0; i+len(needle) <= len(haystack); i++ {
		if string(haystack[i:i+len(needle)]) == string(needle) {
			return true
		}
	}
	return false
}
