package delivery

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
)

// retentionInterval is how often completed temporary integrations are
// deleted (more often when TemporaryRetention is shorter than two of them).
const retentionInterval = time.Hour

// janitor does the housekeeping off the supervisor loop: deleting completed
// temporary integrations after their retention, and consumer groups whose
// integration registration is gone (at every resync and on request).
func (s *Service) janitor(ctx context.Context) {
	retention := time.NewTicker(min(retentionInterval, s.cfg.TemporaryRetention/2))
	defer retention.Stop()
	groups := time.NewTicker(s.cfg.ResyncInterval)
	defer groups.Stop()
	s.retention(ctx)
	s.cleanupGroups(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-retention.C:
			s.retention(ctx)
		case <-groups.C:
			s.cleanupGroups(ctx)
		case <-s.cleanup:
			s.cleanupGroups(ctx)
		}
	}
}

// retention deletes the pool's temporary integrations completed more than
// TemporaryRetention ago (their consumer groups go with the next cleanup).
func (s *Service) retention(ctx context.Context) {
	gone, err := s.store.DeleteCompletedTemporary(ctx, s.tenants, time.Now().Add(-s.cfg.TemporaryRetention))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("deleting completed temporary integrations", "err", err)
		}
		return
	}
	for _, g := range gone {
		s.log.Info("deleted completed temporary integration", "tenant", g.Tenant, "integration", g.ID)
	}
	if len(gone) > 0 {
		s.cleanupSoon()
	}
}

// cleanupGroups deletes consumer groups whose integration registration no
// longer exists (deleted, re-registered under a new generation, or reset to
// a new epoch). A group still in use by some worker is not empty and is left
// for a later pass.
func (s *Service) cleanupGroups(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	listed, err := s.adm.ListGroups(ctx)
	if err != nil {
		s.log.Warn("listing consumer groups", "err", err)
		return
	}
	type parsed struct {
		name  string
		gen   int64
		epoch int
	}
	byKey := map[ikey][]parsed{}
	var tenants []string
	for name := range listed {
		t, id, gen, epoch, ok := parseGroupName(name)
		if !ok {
			continue
		}
		k := ikey{t, id}
		if _, seen := byKey[k]; !seen {
			tenants = append(tenants, t)
		}
		byKey[k] = append(byKey[k], parsed{name, gen, epoch})
	}
	if len(byKey) == 0 {
		return
	}
	// Read the catalog after listing: a group listed above existed before
	// this read, so its integration, if it still exists, is in it.
	states, err := s.store.GroupStates(ctx, tenants)
	if err != nil {
		s.log.Warn("reading integrations for group cleanup", "err", err)
		return
	}
	current := make(map[ikey]catalog.DeliveryState, len(states))
	for _, st := range states {
		current[ikey{st.Tenant, st.ID}] = st
	}
	var orphans []string
	for k, groups := range byKey {
		cur, exists := current[k]
		for _, g := range groups {
			if !exists || g.gen != cur.Generation || g.epoch < cur.GroupEpoch {
				orphans = append(orphans, g.name)
			}
		}
	}
	if len(orphans) == 0 {
		return
	}
	resp, err := s.adm.DeleteGroups(ctx, orphans...)
	if err != nil {
		s.log.Warn("deleting consumer groups", "err", err)
		return
	}
	for _, r := range resp.Sorted() {
		if r.Err == nil {
			s.log.Info("deleted consumer group of a removed integration", "group", r.Group)
		}
	}
}

// parseGroupName splits "eventstream.<tenant>.<id>.<generation>[.<epoch>]".
// Tenants and ids cannot contain dots.
func parseGroupName(name string) (tenant, id string, gen int64, epoch int, ok bool) {
	rest, found := strings.CutPrefix(name, "eventstream.")
	if !found {
		return "", "", 0, 0, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 && len(parts) != 4 {
		return "", "", 0, 0, false
	}
	gen, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", "", 0, 0, false
	}
	if len(parts) == 4 {
		if epoch, err = strconv.Atoi(parts[3]); err != nil || epoch < 1 {
			return "", "", 0, 0, false
		}
	}
	return parts[0], parts[1], gen, epoch, true
}
