package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
)

// waitUntil polls cond every 250 ms until it holds or within passes.
func waitUntil(ctx context.Context, within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("deadline passed")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// sleepUntil waits for t (the schedule's clock); false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// s3File caches the parsed lines of one stored object (objects never change).
type s3File struct {
	size  int64
	mtime time.Time
	lines []observation
}

// readBucket parses every object of bucket (s3local keeps them as files
// under dir/buckets/<bucket>/<key>). Each line is one event as sent; its id
// follows from tenant, name and idempotency key. An object whose key does
// not name its tenant counts as another tenant's.
func readBucket(dir, bucket string, cache map[string]s3File) ([]observation, error) {
	root := filepath.Join(dir, "buckets", bucket)
	var out []observation
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if c, ok := cache[path]; ok && c.size == info.Size() && c.mtime.Equal(info.ModTime()) {
			out = append(out, c.lines...)
			return nil
		}
		lines, err := readObject(path)
		if err != nil {
			return err
		}
		key, _ := filepath.Rel(root, path)
		for i := range lines {
			if !strings.Contains("/"+key, "/"+lines[i].tenant+"/") {
				lines[i].tenant = "(key " + key + ")"
			}
		}
		cache[path] = s3File{size: info.Size(), mtime: info.ModTime(), lines: lines}
		out = append(out, lines...)
		return nil
	})
	return out, err
}

func readObject(path string) ([]observation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	var out []observation
	for {
		var b deliveredBody
		if err := dec.Decode(&b); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, observation{tenant: b.Tenant, name: b.Name, key: b.Payload.Key,
			eventID: events.EventID(b.Tenant, b.Name, b.Payload.Key).String()})
	}
}

// rowCounts are one event's attempt rows for one integration.
type rowCounts struct{ success, failure int }

// attemptRows reads the run's publish_attempts: integration key → event id
// → rows, an S3 file's row counting once for each event it holds.
func attemptRows(ctx context.Context, sys *system) (map[string]map[string]rowCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := sys.pool.Query(ctx, `
		SELECT tenant || '/' || integration_id, e.id::text,
		       count(*) FILTER (WHERE status = $2), count(*) FILTER (WHERE status <> $2)
		FROM publish_attempts p CROSS JOIN LATERAL unnest(coalesce(p.event_ids, ARRAY[p.event_id])) AS e(id)
		WHERE tenant = ANY($1) GROUP BY 1, 2`, sys.tenants, catalog.AttemptSuccess)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]rowCounts{}
	for rows.Next() {
		var k, id string
		var c rowCounts
		if err := rows.Scan(&k, &id, &c.success, &c.failure); err != nil {
			return nil, err
		}
		if out[k] == nil {
			out[k] = map[string]rowCounts{}
		}
		out[k][id] = c
	}
	return out, rows.Err()
}

// missingAttemptRows counts webhook deliveries without a SUCCESS row (S3
// lines are read only at the end).
func missingAttemptRows(ctx context.Context, sys *system, l *Ledger) (int, error) {
	rows, err := attemptRows(ctx, sys)
	if err != nil {
		return -1, err
	}
	n := 0
	for _, in := range sys.integs {
		if in.Target != catalog.TargetWebhook {
			continue
		}
		for _, id := range l.deliveredIDs(in) {
			if rows[in.key()][id].success == 0 {
				n++
			}
		}
	}
	return n, nil
}

// recovery is how long after healed every affected integration that
// delivered again at all did so (-1: none did).
func recovery(sys *system, l *Ledger, affected []*integration, healed time.Time) time.Duration {
	worst := time.Duration(-1)
	for _, in := range affected {
		var at time.Time
		var ok bool
		if in.Target == catalog.TargetS3 {
			at, ok = sys.s3.storedAfter(in.bucket, healed)
		} else {
			at, ok = l.firstDeliveryAfter(in, healed)
		}
		if ok && at.Sub(healed) > worst {
			worst = at.Sub(healed)
		}
	}
	return worst
}

func filterText(in *integration) string {
	var parts []string
	if len(in.EventFilter) > 0 {
		parts = append(parts, "events "+strings.Join(in.EventFilter, ","))
	}
	if len(in.EntityFilter) > 0 {
		parts = append(parts, "entities "+strings.Join(in.EntityFilter, ","))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " or ")
}
