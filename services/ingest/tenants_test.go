package ingest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/testenv"
)

// TestTenantCacheAvoidsPerRequestQueries: the catalog is asked once per
// tenant per TTL, however many concurrent requests arrive; unknown tenants
// are remembered for the shorter miss TTL; a tenant provisioned after a miss
// becomes usable once that expires.
func TestTenantCacheAvoidsPerRequestQueries(t *testing.T) {
	store, _ := testenv.NewStore(t)
	ctx := context.Background()
	if err := store.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	var queries atomic.Int64
	c := newTenantCache(func(ctx context.Context, tenant string) (bool, error) {
		queries.Add(1)
		return store.TenantExists(ctx, tenant)
	}, time.Minute, time.Second)
	now := time.Now()
	var clock sync.Mutex
	c.now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
	advance := func(d time.Duration) { clock.Lock(); now = now.Add(d); clock.Unlock() }

	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if ok, err := c.Exists(ctx, "acme"); !ok || err != nil {
				t.Errorf("Exists(acme) = %v, %v", ok, err)
			}
		})
	}
	wg.Wait()
	if n := queries.Load(); n != 1 {
		t.Fatalf("%d catalog queries for 200 lookups of one tenant, want 1", n)
	}
	for range 3 {
		if ok, _ := c.Exists(ctx, "later"); ok {
			t.Fatal("unprovisioned tenant reported as existing")
		}
	}
	if n := queries.Load(); n != 2 {
		t.Fatalf("misses were not cached: %d queries", n)
	}
	if err := store.CreateTenant(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	advance(1500 * time.Millisecond)
	if ok, _ := c.Exists(ctx, "later"); !ok {
		t.Fatal("tenant provisioned after a miss still unknown once the miss TTL passed")
	}
	if ok, _ := c.Exists(ctx, "acme"); !ok || queries.Load() != 3 {
		t.Fatalf("acme re-queried within its TTL: %d queries", queries.Load())
	}
	advance(time.Minute)
	if _, err := c.Exists(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if n := queries.Load(); n != 4 {
		t.Fatalf("acme not re-checked after its TTL: %d queries", n)
	}
}
