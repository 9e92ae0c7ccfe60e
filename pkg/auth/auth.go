// Package auth verifies the bearer JWTs of every API: the tenant and scopes come
// from the token's claims. Tokens are verified with an HS256 secret (local use)
// or the keys of a JWKS URL (production identity providers).
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/eventstream/eventstream/pkg/httpapi"
)

// Scopes a token can carry.
const (
	ScopeIntegrationsRead  = "integrations:read"
	ScopeIntegrationsWrite = "integrations:write"
	ScopeEventsPublish     = "events:publish"
	ScopeEventsRead        = "events:read"
	// ScopePlatform lets a token act for any tenant named in the request
	// (the commerce platform's own publisher).
	ScopePlatform = "platform"
)

// AllTenantScopes are the scopes a tenant's own full-access token carries.
var AllTenantScopes = []string{ScopeIntegrationsRead, ScopeIntegrationsWrite, ScopeEventsPublish, ScopeEventsRead}

// Principal is who a verified token speaks for.
type Principal struct {
	Subject string
	Tenant  string // empty for a platform token without a tenant
	Scopes  map[string]bool
}

// Has reports whether the principal holds scope.
func (p *Principal) Has(scope string) bool { return p.Scopes[scope] }

// Claims are the JWT claims Event Stream reads. Scope is space-separated (RFC 8693).
type Claims struct {
	Tenant string `json:"tenant,omitempty"`
	Scope  string `json:"scope,omitempty"`
	jwt.RegisteredClaims
}

// Config selects how tokens are verified. Exactly one of HS256Secret and JWKSURL.
type Config struct {
	HS256Secret string
	JWKSURL     string
	Issuer      string // required "iss" when set
	Audience    string // required "aud" when set
}

// ConfigFromEnv reads AUTH_HS256_SECRET, AUTH_JWKS_URL, AUTH_ISSUER and
// AUTH_AUDIENCE, the variables every API service shares.
func ConfigFromEnv(getenv func(string) string) Config {
	return Config{
		HS256Secret: getenv("AUTH_HS256_SECRET"),
		JWKSURL:     getenv("AUTH_JWKS_URL"),
		Issuer:      getenv("AUTH_ISSUER"),
		Audience:    getenv("AUTH_AUDIENCE"),
	}
}

// Validate checks the configuration before anything starts.
func (c Config) Validate() error {
	switch {
	case c.HS256Secret == "" && c.JWKSURL == "":
		return errors.New("auth: set AUTH_HS256_SECRET or AUTH_JWKS_URL")
	case c.HS256Secret != "" && c.JWKSURL != "":
		return errors.New("auth: set only one of AUTH_HS256_SECRET and AUTH_JWKS_URL")
	case c.HS256Secret != "" && len(c.HS256Secret) < 32:
		return errors.New("auth: AUTH_HS256_SECRET must be at least 32 bytes")
	case c.JWKSURL != "" && (c.Issuer == "" || c.Audience == ""):
		// An identity provider's keys sign tokens for every application it
		// serves: without an issuer and audience check, a token minted for
		// another application of the same provider would be accepted here.
		return errors.New("auth: AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE (tokens of other applications of the same identity provider would be accepted otherwise)")
	}
	return nil
}

// Verifier checks tokens.
type Verifier struct {
	keyfunc jwt.Keyfunc
	parser  *jwt.Parser

	// cache remembers verified tokens: a publisher sends the same token with
	// every request, and a signature check (RSA especially) costs more than
	// the rest of a small ingest request. Entries live until the token
	// expires, but at most cacheTTL, so a key removed from the JWKS stops
	// working within that bound.
	mu    sync.Mutex
	cache map[string]cached
	now   func() time.Time // the clock for expiry checks; tests move it
}

type cached struct {
	p       *Principal
	expires time.Time
}

const (
	cacheTTL  = 5 * time.Minute
	cacheSize = 4096
)

// NewVerifier builds a Verifier. With a JWKS URL the keys are fetched now and
// refreshed in the background until ctx ends.
func NewVerifier(ctx context.Context, c Config) (*Verifier, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{jwt.WithExpirationRequired(), jwt.WithLeeway(30 * time.Second)}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	v := &Verifier{cache: make(map[string]cached), now: time.Now}
	opts = append(opts, jwt.WithTimeFunc(func() time.Time { return v.now() }))
	if c.HS256Secret != "" {
		secret := []byte(c.HS256Secret)
		v.keyfunc = func(*jwt.Token) (any, error) { return secret, nil }
		opts = append(opts, jwt.WithValidMethods([]string{"HS256"}))
	} else {
		kf, err := keyfunc.NewDefaultCtx(ctx, []string{c.JWKSURL})
		if err != nil {
			return nil, fmt.Errorf("loading JWKS from %s: %w", c.JWKSURL, err)
		}
		v.keyfunc = kf.Keyfunc
		opts = append(opts, jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"}))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Verify checks a raw token and returns its principal. The principal is
// shared between requests carrying the same token: callers must not modify it.
func (v *Verifier) Verify(raw string) (*Principal, error) {
	now := v.now()
	v.mu.Lock()
	e, ok := v.cache[raw]
	v.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.p, nil
	}
	p, exp, err := v.verify(raw)
	if err != nil {
		return nil, err
	}
	if limit := now.Add(cacheTTL); exp.After(limit) {
		exp = limit
	}
	v.mu.Lock()
	if len(v.cache) >= cacheSize {
		for k, e := range v.cache { // evict expired entries, or an arbitrary one
			delete(v.cache, k)
			if now.Before(e.expires) {
				break
			}
		}
	}
	v.cache[raw] = cached{p: p, expires: exp}
	v.mu.Unlock()
	return p, nil
}

func (v *Verifier) verify(raw string) (*Principal, time.Time, error) {
	var claims Claims
	if _, err := v.parser.ParseWithClaims(raw, &claims, v.keyfunc); err != nil {
		return nil, time.Time{}, fmt.Errorf("verifying token: %w", err)
	}
	p := &Principal{Subject: claims.Subject, Tenant: claims.Tenant, Scopes: map[string]bool{}}
	for _, s := range strings.Fields(claims.Scope) {
		p.Scopes[s] = true
	}
	if p.Tenant == "" && !p.Has(ScopePlatform) {
		return nil, time.Time{}, errors.New("verifying token: no tenant claim")
	}
	// WithExpirationRequired guarantees ExpiresAt is set.
	return p, claims.ExpiresAt.Time, nil
}

// Mint signs an HS256 token for tenant with scopes, valid for ttl. It is for the
// local stack and tests; production tokens come from the identity provider.
func Mint(secret, tenant string, scopes []string, ttl time.Duration) (string, error) {
	now := time.Now()
	c := Claims{Tenant: tenant, Scope: strings.Join(scopes, " "), RegisteredClaims: jwt.RegisteredClaims{
		Subject: "local:" + tenant, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return s, nil
}

const principalKey = "eventstream.principal"

// Middleware rejects requests without a valid bearer token (401) and stores the
// principal for handlers (read it with FromContext).
func (v *Verifier) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			raw, ok := BearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
			if !ok {
				return httpapi.NewError(http.StatusUnauthorized, "unauthorized", "missing bearer token in the Authorization header")
			}
			p, err := v.Verify(raw)
			if err != nil {
				return httpapi.NewError(http.StatusUnauthorized, "unauthorized", "invalid bearer token")
			}
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

// BearerToken returns the token of an "Authorization: Bearer <token>" value.
// The scheme is case-insensitive (RFC 7235 section 2.1: "bearer", "BEARER"
// work too); the token is what follows the spaces after it, trimmed.
func BearerToken(h string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimLeft(h, " "), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok := strings.TrimSpace(rest)
	return tok, tok != ""
}

// Require rejects requests whose principal lacks scope (403). Use it after Middleware.
func Require(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := FromContext(c)
			if p == nil {
				return httpapi.NewError(http.StatusUnauthorized, "unauthorized", "missing bearer token in the Authorization header")
			}
			if !p.Has(scope) {
				return httpapi.NewError(http.StatusForbidden, "forbidden", "token lacks the "+scope+" scope")
			}
			return next(c)
		}
	}
}

// FromContext returns the request's verified principal, or nil.
func FromContext(c echo.Context) *Principal {
	p, _ := c.Get(principalKey).(*Principal)
	return p
}
