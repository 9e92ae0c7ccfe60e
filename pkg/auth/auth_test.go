package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/httpapi"
)

const secret = "0123456789abcdef0123456789abcdef-local"

func server(t *testing.T, v *auth.Verifier) *httptest.Server {
	e := httpapi.New(httpapi.Options{})
	g := e.Group("", v.Middleware())
	g.GET("/read", func(c echo.Context) error { return c.String(200, auth.FromContext(c).Tenant) }, auth.Require(auth.ScopeIntegrationsRead))
	g.GET("/write", func(c echo.Context) error { return c.String(200, "ok") }, auth.Require(auth.ScopeIntegrationsWrite))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url, token string) int {
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestHS256(t *testing.T) {
	v, err := auth.NewVerifier(context.Background(), auth.Config{HS256Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, v)
	readOnly, _ := auth.Mint(secret, "acme", []string{auth.ScopeIntegrationsRead}, time.Hour)
	expired, _ := auth.Mint(secret, "acme", auth.AllTenantScopes, -time.Hour)
	wrongKey, _ := auth.Mint("another-secret-another-secret-xx", "acme", auth.AllTenantScopes, time.Hour)
	noTenant, _ := auth.Mint(secret, "", auth.AllTenantScopes, time.Hour)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"tenant": "acme", "scope": "integrations:read", "exp": time.Now().Add(time.Hour).Unix()})
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	cases := []struct {
		name, path, token string
		want              int
	}{
		{"valid read", "/read", readOnly, 200},
		{"missing scope", "/write", readOnly, 403},
		{"no token", "/read", "", 401},
		{"garbage", "/read", "not-a-jwt", 401},
		{"expired", "/read", expired, 401},
		{"wrong key", "/read", wrongKey, 401},
		{"no tenant", "/read", noTenant, 401},
		{"alg none", "/read", noneTok, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := get(t, srv.URL+c.path, c.token); got != c.want {
				t.Fatalf("status = %d, want %d", got, c.want)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}}
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jwks)
	}))
	defer idp.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := auth.NewVerifier(ctx, auth.Config{JWKSURL: idp.URL, Issuer: "https://idp.example", Audience: "eventstream"})
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, v)
	sign := func(iss string, aud ...string) string {
		if aud == nil {
			aud = []string{"eventstream"}
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"tenant": "acme", "scope": "integrations:read", "iss": iss, "aud": aud, "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := get(t, srv.URL+"/read", sign("https://idp.example")); got != 200 {
		t.Fatalf("JWKS-signed token: status %d, want 200", got)
	}
	if got := get(t, srv.URL+"/read", sign("https://evil.example")); got != 401 {
		t.Fatalf("wrong issuer: status %d, want 401", got)
	}
	if got := get(t, srv.URL+"/read", sign("https://idp.example", "another-app")); got != 401 {
		t.Fatalf("token for another audience: status %d, want 401", got)
	}
	hsToken, _ := auth.Mint(secret, "acme", auth.AllTenantScopes, time.Hour)
	if got := get(t, srv.URL+"/read", hsToken); got != 401 {
		t.Fatalf("HS256 token against a JWKS verifier: status %d, want 401", got)
	}
}

// TestJWKSNeedsIssuerAndAudience: a JWKS verifier without an issuer or an
// audience would accept tokens the identity provider minted for any other
// application, so the configuration is refused before anything starts.
func TestJWKSNeedsIssuerAndAudience(t *testing.T) {
	for name, c := range map[string]auth.Config{
		"neither":     {JWKSURL: "https://idp.example/jwks"},
		"no audience": {JWKSURL: "https://idp.example/jwks", Issuer: "https://idp.example"},
		"no issuer":   {JWKSURL: "https://idp.example/jwks", Audience: "eventstream"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := c.Validate(); err == nil {
				t.Fatal("Validate accepted a JWKS configuration without issuer and audience")
			}
			if _, err := auth.NewVerifier(context.Background(), c); err == nil {
				t.Fatal("NewVerifier accepted a JWKS configuration without issuer and audience")
			}
		})
	}
	ok := auth.Config{JWKSURL: "https://idp.example/jwks", Issuer: "https://idp.example", Audience: "eventstream"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("complete JWKS configuration refused: %v", err)
	}
}

// TestBearerSchemeCaseInsensitive: RFC 7235 makes the auth scheme
// case-insensitive, so "bearer" and "BEARER" authenticate like "Bearer".
func TestBearerSchemeCaseInsensitive(t *testing.T) {
	v, err := auth.NewVerifier(context.Background(), auth.Config{HS256Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, v)
	tok, _ := auth.Mint(secret, "acme", auth.AllTenantScopes, time.Hour)
	for _, c := range []struct {
		header string
		want   int
	}{
		{"Bearer " + tok, 200},
		{"bearer " + tok, 200},
		{"BEARER " + tok, 200},
		{"bEaReR   " + tok + " ", 200},
		{"Basic " + tok, 401},
		{"Bearer", 401},
		{"Bearer ", 401},
		{"Bearertoken " + tok, 401},
		{tok, 401},
	} {
		t.Run(c.header, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/read", nil)
			req.Header.Set("Authorization", c.header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, c.want)
			}
		})
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer abc", "Basic abc", "", "Bearer", " Bearer  x  "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := auth.BearerToken(h)
		if ok && (tok == "" || tok != strings.TrimSpace(tok)) {
			t.Fatalf("BearerToken(%q) = %q: empty or untrimmed token accepted", h, tok)
		}
		if !ok && tok != "" {
			t.Fatalf("BearerToken(%q) returned a token with ok=false", h)
		}
	})
}
