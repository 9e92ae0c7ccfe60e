package ingest

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// tenantLookup answers whether a tenant was provisioned (the catalog's
// TenantExists).
type tenantLookup func(ctx context.Context, tenant string) (bool, error)

// maxTenantEntries bounds the cache: names come from clients, and a flood of
// made-up tenant names must not grow memory without limit.
const maxTenantEntries = 100_000

// lookupTimeout bounds one catalog query for a tenant.
const lookupTimeout = 5 * time.Second

// tenantCache remembers tenant existence so publishing never costs a SQL query
// per event (nor per request, once warm). Concurrent misses for one tenant
// share a single query.
type tenantCache struct {
	lookup       tenantLookup
	ttl, missTTL time.Duration
	now          func() time.Time

	mu      sync.RWMutex
	entries map[string]tenantEntry
	group   singleflight.Group
}

type tenantEntry struct {
	exists  bool
	expires time.Time
}

func newTenantCache(lookup tenantLookup, ttl, missTTL time.Duration) *tenantCache {
	return &tenantCache{lookup: lookup, ttl: ttl, missTTL: missTTL, now: time.Now, entries: map[string]tenantEntry{}}
}

// Exists reports whether tenant exists, from the cache when fresh.
func (c *tenantCache) Exists(ctx context.Context, tenant string) (bool, error) {
	c.mu.RLock()
	e, ok := c.entries[tenant]
	c.mu.RUnlock()
	if ok && c.now().Before(e.expires) {
		return e.exists, nil
	}
	v, err, _ := c.group.Do(tenant, func() (any, error) {
		// A flight that ended between the read above and this one has
		// stored the answer: use it rather than query again.
		c.mu.RLock()
		e, ok := c.entries[tenant]
		c.mu.RUnlock()
		if ok && c.now().Before(e.expires) {
			return e.exists, nil
		}
		// The query is shared by every request waiting for this tenant, so
		// it must not die with the first one's context.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		exists, err := c.lookup(qctx, tenant)
		if err != nil {
			return false, err
		}
		ttl := c.ttl
		if !exists {
			ttl = c.missTTL
		}
		c.mu.Lock()
		if len(c.entries) >= maxTenantEntries {
			clear(c.entries)
		}
		c.entries[tenant] = tenantEntry{exists: exists, expires: c.now().Add(ttl)}
		c.mu.Unlock()
		return exists, nil
	})
	if err != nil {
		return false, err
	}
	return v.(bool), nil
}
