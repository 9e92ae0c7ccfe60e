package auth

import (
	"context"
	"testing"
	"time"
)

// A cached verification must not outlive the token: once the clock passes its
// expiry (plus the parser's leeway), the same token is refused again.
func TestCachedTokenStillExpires(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-local"
	v, err := NewVerifier(context.Background(), Config{HS256Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	v.now = func() time.Time { return now }
	tok, _ := Mint(secret, "acme", AllTenantScopes, time.Minute)
	first, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := v.Verify(tok); err != nil || again != first {
		t.Fatalf("second verification = %v, %v; want the cached principal", again, err)
	}
	now = now.Add(time.Minute + time.Minute) // past expiry and the 30 s leeway
	if _, err := v.Verify(tok); err == nil {
		t.Fatal("expired token accepted from the cache")
	}
	// A long-lived token is re-verified after cacheTTL even though still valid.
	long, _ := Mint(secret, "acme", AllTenantScopes, 24*time.Hour)
	if _, err := v.Verify(long); err != nil {
		t.Fatal(err)
	}
	if e := v.cache[long]; !e.expires.Equal(now.Add(cacheTTL)) {
		t.Fatalf("cache entry expires %v, want now+%v", e.expires, cacheTTL)
	}
}
