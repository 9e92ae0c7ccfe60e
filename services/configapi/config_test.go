package configapi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/testenv"
)

func TestConfigFromEnv(t *testing.T) {
	key := hex.EncodeToString(testenv.TestKey)
	base := map[string]string{
		"DATABASE_URL":      "postgres://localhost/eventstream",
		"SECRETS_KEY":       key,
		"AUTH_HS256_SECRET": testHS256Secret,
	}
	env := func(over map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := over[k]; ok {
				return v
			}
			return base[k]
		}
	}
	t.Run("defaults", func(t *testing.T) {
		c, err := ConfigFromEnv(env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if c.Addr != ":8081" || c.BodyLimit != 256<<10 || c.MaxIntegrations != 10 || c.Migrate || c.ShutdownTimeout != 10*time.Second {
			t.Errorf("defaults = %+v", c)
		}
		if string(c.EncryptionKey) != string(testenv.TestKey) || c.Auth.HS256Secret != testHS256Secret {
			t.Errorf("key or auth not read: %+v", c)
		}
	})
	t.Run("everything set", func(t *testing.T) {
		c, err := ConfigFromEnv(env(map[string]string{
			"CONFIGAPI_ADDR": "127.0.0.1:9000", "CONFIGAPI_BODY_LIMIT": "1024", "MAX_INTEGRATIONS_PER_TENANT": "3",
			"CONFIGAPI_MIGRATE": "true", "CONFIGAPI_SHUTDOWN_TIMEOUT": "2s", "AUTH_HS256_SECRET": "",
			"AUTH_JWKS_URL": "https://idp.example.com/jwks", "AUTH_ISSUER": "https://idp.example.com", "AUTH_AUDIENCE": "eventstream",
			"SECRETS_KEY":         "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", // base64 of the same key
			"WEBHOOK_ALLOW_CIDRS": "127.0.0.0/8, 10.1.2.3",
		}))
		if err != nil {
			t.Fatal(err)
		}
		w := auth.Config{JWKSURL: "https://idp.example.com/jwks", Issuer: "https://idp.example.com", Audience: "eventstream"}
		if c.Addr != "127.0.0.1:9000" || c.BodyLimit != 1024 || c.MaxIntegrations != 3 || !c.Migrate ||
			c.ShutdownTimeout != 2*time.Second || c.Auth != w || string(c.EncryptionKey) != string(testenv.TestKey) {
			t.Errorf("config = %+v", c)
		}
		if fmt.Sprint(c.WebhookAllowCIDRs) != "[127.0.0.0/8 10.1.2.3/32]" {
			t.Errorf("WEBHOOK_ALLOW_CIDRS = %v", c.WebhookAllowCIDRs)
		}
	})
	for _, c := range []struct{ name, key, value, mention string }{
		{"no database", "DATABASE_URL", "", "DATABASE_URL"},
		{"no key", "SECRETS_KEY", "", "SECRETS_KEY"},
		{"short key", "SECRETS_KEY", "abcd", "SECRETS_KEY"},
		{"no auth", "AUTH_HS256_SECRET", "", "AUTH_"},
		{"short hs256 secret", "AUTH_HS256_SECRET", "short", "AUTH_HS256_SECRET"},
		{"bad limit", "MAX_INTEGRATIONS_PER_TENANT", "0", "MAX_INTEGRATIONS_PER_TENANT"},
		{"bad body limit", "CONFIGAPI_BODY_LIMIT", "-1", "CONFIGAPI_BODY_LIMIT"},
		{"bad migrate", "CONFIGAPI_MIGRATE", "perhaps", "CONFIGAPI_MIGRATE"},
		{"bad timeout", "CONFIGAPI_SHUTDOWN_TIMEOUT", "soon", "CONFIGAPI_SHUTDOWN_TIMEOUT"},
		{"bad allow-list", "WEBHOOK_ALLOW_CIDRS", "localhost", "WEBHOOK_ALLOW_CIDRS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ConfigFromEnv(env(map[string]string{c.key: c.value}))
			if err == nil || !strings.Contains(err.Error(), c.mention) {
				t.Errorf("err = %v, want one mentioning %s", err, c.mention)
			}
		})
	}
}

func TestServeDrainsOnCancel(t *testing.T) {
	store, db := testenv.NewStore(t)
	cfg := Config{DatabaseURL: db.URL, EncryptionKey: testenv.TestKey, Auth: auth.Config{HS256Secret: testHS256Secret}}
	verifier, err := auth.NewVerifier(context.Background(), cfg.Auth)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, store, verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String() + "/healthz"
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz = %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v after cancel", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Error("still serving after Serve returned")
	}
}

func TestRunReportsListenErrors(t *testing.T) {
	store, db := testenv.NewStore(t)
	verifier, _ := auth.NewVerifier(context.Background(), auth.Config{HS256Secret: testHS256Secret})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, err := New(Config{Addr: ln.Addr().String(), DatabaseURL: db.URL, EncryptionKey: testenv.TestKey,
		Auth: auth.Config{HS256Secret: testHS256Secret}}, store, verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	var opErr *net.OpError
	if err := srv.Run(context.Background()); !errors.As(err, &opErr) {
		t.Errorf("Run on a taken address = %v", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	store, _ := testenv.NewStore(t)
	verifier, _ := auth.NewVerifier(context.Background(), auth.Config{HS256Secret: testHS256Secret})
	if _, err := New(Config{Auth: auth.Config{HS256Secret: testHS256Secret}}, store, verifier, nil); err == nil {
		t.Error("New accepted a config without DATABASE_URL and SECRETS_KEY")
	}
}

// One start reports every problem: a malformed variable, a failed check and
// a missing requirement together, each named.
func TestConfigFromEnvReportsEveryProblem(t *testing.T) {
	env := map[string]string{"CONFIGAPI_BODY_LIMIT": "big", "CONFIGAPI_RETRY_BURST": "0", "AUTH_HS256_SECRET": testHS256Secret}
	_, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"CONFIGAPI_BODY_LIMIT", "CONFIGAPI_RETRY_BURST", "DATABASE_URL", "SECRETS_KEY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}
