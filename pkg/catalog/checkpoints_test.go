package catalog_test

import (
	"context"
	"maps"
	"testing"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// Offset checkpoints are written in batches across integrations, move only
// forward within a group, are read per group (another generation's or
// epoch's rows are not this group's offsets), and go with the integration.
func TestOffsetCheckpoints(t *testing.T) {
	ctx := context.Background()
	store, db := testenv.NewStore(t)
	if err := store.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	mk := func(id string) *catalog.Integration {
		in := &catalog.Integration{Tenant: "acme", ID: id, Type: catalog.TypePermanent,
			Webhook: &catalog.Webhook{CallbackURL: "https://example.com/" + id}}
		if err := store.CreateIntegration(ctx, in, 10); err != nil {
			t.Fatal(err)
		}
		return in
	}
	a, b := mk("a"), mk("b")
	cp := func(in *catalog.Integration, gen int64, epoch int, p int32, next int64) catalog.OffsetCheckpoint {
		return catalog.OffsetCheckpoint{Tenant: "acme", IntegrationID: in.ID, Generation: gen, GroupEpoch: epoch, Partition: p, NextOffset: next}
	}
	save := func(cps ...catalog.OffsetCheckpoint) {
		t.Helper()
		if err := store.SaveOffsetCheckpoints(ctx, cps); err != nil {
			t.Fatal(err)
		}
	}
	read := func(in *catalog.Integration, gen int64, epoch int, want map[int32]int64) {
		t.Helper()
		got, err := store.OffsetCheckpoints(ctx, "acme", in.ID, gen, epoch)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("checkpoints of %s (generation %d, epoch %d) = %v, want %v", in.ID, gen, epoch, got, want)
		}
	}

	save(cp(a, a.Generation, 0, 0, 10), cp(a, a.Generation, 0, 1, 20), cp(b, b.Generation, 0, 0, 5))
	read(a, a.Generation, 0, map[int32]int64{0: 10, 1: 20})
	read(b, b.Generation, 0, map[int32]int64{0: 5})

	t.Run("moves only forward", func(t *testing.T) {
		save(cp(a, a.Generation, 0, 0, 7), cp(a, a.Generation, 0, 1, 25))
		read(a, a.Generation, 0, map[int32]int64{0: 10, 1: 25})
	})
	t.Run("another generation or epoch is neither written nor read", func(t *testing.T) {
		save(cp(a, a.Generation+1000, 0, 0, 99), cp(a, a.Generation, 1, 1, 99))
		read(a, a.Generation, 0, map[int32]int64{0: 10, 1: 25})
		read(a, a.Generation+1000, 0, map[int32]int64{})
		read(a, a.Generation, 1, map[int32]int64{})
	})
	t.Run("a new group epoch replaces the old group's rows", func(t *testing.T) {
		if _, err := db.Pool.Exec(ctx, `UPDATE integrations SET group_epoch = 1 WHERE tenant = 'acme' AND id = 'a'`); err != nil {
			t.Fatal(err)
		}
		read(a, a.Generation, 1, map[int32]int64{}) // the old epoch's rows are not the new group's
		save(cp(a, a.Generation, 1, 0, 3))
		read(a, a.Generation, 1, map[int32]int64{0: 3})
		read(a, a.Generation, 0, map[int32]int64{1: 25})
	})
	t.Run("rows vanish with the integration", func(t *testing.T) {
		if err := store.DeleteIntegration(ctx, "acme", "b"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM delivery_offset_checkpoints WHERE integration_id = 'b'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d checkpoint rows left after deleting the integration", n)
		}
		// A batch still holding the deleted integration's entry is written
		// for the others, not refused whole.
		save(cp(b, b.Generation, 0, 0, 50), cp(a, a.Generation, 1, 0, 4))
		read(a, a.Generation, 1, map[int32]int64{0: 4})
		b2 := mk("b")
		read(b2, b.Generation, 0, map[int32]int64{})
		read(b2, b2.Generation, 0, map[int32]int64{})
	})
}
