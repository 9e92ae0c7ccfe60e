package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const integrationColumns = `tenant, id, generation, integration_type, status, target,
	callback_url, api_key_enc, signing_secret_enc,
	aws_access_key_id, aws_secret_enc, aws_region, bucket, key_prefix,
	event_filter, entity_filter, starts_at, ends_at,
	created_at, updated_at, stopped_at, completed_at`

// CreateTenant provisions a tenant in the catalog. It is idempotent.
func (s *Store) CreateTenant(ctx context.Context, name string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO tenants (name) VALUES ($1) ON CONFLICT DO NOTHING`, name); err != nil {
		return fmt.Errorf("creating tenant %q: %w", name, err)
	}
	return nil
}

// TenantExists reports whether a tenant was provisioned.
func (s *Store) TenantExists(ctx context.Context, name string) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE name = $1)`, name).Scan(&ok); err != nil {
		return false, fmt.Errorf("checking tenant %q: %w", name, err)
	}
	return ok, nil
}

// ListTenants returns every provisioned tenant, sorted.
func (s *Store) ListTenants(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name FROM tenants ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// CreateIntegration registers in (running) and logs it. It fails with
// ErrNotFound when the tenant was never provisioned, ErrConflict when the id is
// taken and ErrLimitReached when the tenant already has limit integrations.
// On success in is updated with the stored generation and timestamps.
func (s *Store) CreateIntegration(ctx context.Context, in *Integration, limit int) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Locking the tenant row serialises concurrent registrations, so the
		// count below cannot be raced past the limit.
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM tenants WHERE name = $1 FOR UPDATE`, in.Tenant).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("tenant %q: %w", in.Tenant, ErrNotFound)
			}
			return fmt.Errorf("locking tenant: %w", err)
		}
		var exists bool
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*), bool_or(id = $2) IS TRUE FROM integrations WHERE tenant = $1`,
			in.Tenant, in.ID).Scan(&n, &exists); err != nil {
			return fmt.Errorf("counting integrations: %w", err)
		}
		if exists {
			return fmt.Errorf("integration %q: %w", in.ID, ErrConflict)
		}
		if n >= limit {
			return fmt.Errorf("tenant has %d integrations: %w", n, ErrLimitReached)
		}
		in.Status = StatusRunning
		args := s.encode(in)
		row := tx.QueryRow(ctx, `INSERT INTO integrations (
			tenant, id, integration_type, status, target,
			callback_url, api_key_enc, signing_secret_enc,
			aws_access_key_id, aws_secret_enc, aws_region, bucket, key_prefix,
			event_filter, entity_filter, starts_at, ends_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)
			RETURNING generation, created_at, updated_at`, args...)
		if err := row.Scan(&in.Generation, &in.CreatedAt, &in.UpdatedAt); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" {
				return fmt.Errorf("integration %q: %w", in.ID, ErrConflict)
			}
			return fmt.Errorf("inserting integration: %w", err)
		}
		return addLog(ctx, tx, in.Tenant, in.ID, ActionStarted, "Registered and started via API.")
	})
}

// GetIntegration returns one integration of tenant, or ErrNotFound. When its
// secrets cannot be decrypted it returns the integration (secrets empty)
// together with an *UnreadableError (errors.Is ErrSecretsUnreadable).
func (s *Store) GetIntegration(ctx context.Context, tenant, id string) (*Integration, error) {
	return s.getIntegration(ctx, s.pool, tenant, id, false)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (s *Store) getIntegration(ctx context.Context, q querier, tenant, id string, forUpdate bool) (*Integration, error) {
	sql := `SELECT ` + integrationColumns + ` FROM integrations WHERE tenant = $1 AND id = $2`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	rows, err := q.Query(ctx, sql, tenant, id)
	if err != nil {
		return nil, fmt.Errorf("reading integration: %w", err)
	}
	list, err := s.collect(rows)
	var ue *UnreadableError
	if err != nil && !errors.As(err, &ue) {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("integration %q: %w", id, ErrNotFound)
	}
	return list[0], err
}

// ListIntegrations returns a tenant's integrations ordered by creation. An
// integration whose secrets cannot be decrypted is listed with its secrets
// empty, and the returned *UnreadableError names it: one bad row does not
// hide the others.
func (s *Store) ListIntegrations(ctx context.Context, tenant string) ([]*Integration, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+integrationColumns+` FROM integrations WHERE tenant = $1 ORDER BY created_at, id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing integrations: %w", err)
	}
	return s.collect(rows)
}

// ListRunning returns the running integrations of the given tenants; a nil
// tenants slice means every tenant. Unreadable secrets are reported as in
// ListIntegrations (the list is complete; the error names the bad rows).
func (s *Store) ListRunning(ctx context.Context, tenants []string) ([]*Integration, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+integrationColumns+` FROM integrations
		WHERE status = 'running' AND ($1::text[] IS NULL OR tenant = ANY($1)) ORDER BY tenant, id`, tenants)
	if err != nil {
		return nil, fmt.Errorf("listing running integrations: %w", err)
	}
	return s.collect(rows)
}

// UpdateIntegration loads the integration under a row lock, lets fn change it
// (fn returning an error aborts with that error), and stores the result. Type,
// target, starts_at and ends_at are immutable and not written back. An
// integration whose secrets cannot be decrypted is not updated (writing it
// back would erase them): the *UnreadableError is returned.
func (s *Store) UpdateIntegration(ctx context.Context, tenant, id string, fn func(*Integration) error) (*Integration, error) {
	var out *Integration
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		in, err := s.getIntegration(ctx, tx, tenant, id, true)
		if err != nil {
			return err
		}
		if err := fn(in); err != nil {
			return err
		}
		// encode yields the INSERT columns; only tenant, id and the mutable
		// columns are passed, since Postgres cannot type unused parameters.
		a := s.encode(in)
		args := append([]any{a[0], a[1]}, a[5:15]...)
		err = tx.QueryRow(ctx, `UPDATE integrations SET
			callback_url = $3, api_key_enc = $4, signing_secret_enc = $5,
			aws_access_key_id = $6, aws_secret_enc = $7, aws_region = $8, bucket = $9, key_prefix = $10,
			event_filter = $11, entity_filter = $12, updated_at = now()
			WHERE tenant = $1 AND id = $2 RETURNING updated_at`, args...).Scan(&in.UpdatedAt)
		if err != nil {
			return fmt.Errorf("updating integration: %w", err)
		}
		out = in
		return nil
	})
	return out, err
}

// SetStatus moves an integration to status and appends a log entry in the same
// transaction. Setting the status it already has changes nothing and logs
// nothing, so repeated _start/_stop calls are harmless. Unreadable secrets do
// not prevent it (an operator must be able to stop such an integration); the
// *UnreadableError is returned with the integration after the change. The
// reason is stored as SafeText; a reason Postgres still refuses for its
// content fails with ErrUnstorable (trying it again cannot help).
func (s *Store) SetStatus(ctx context.Context, tenant, id, status, action, reason string) (*Integration, error) {
	var out *Integration
	var unreadable error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		in, err := s.getIntegration(ctx, tx, tenant, id, true)
		if errors.Is(err, ErrSecretsUnreadable) {
			unreadable, err = err, nil
		}
		if err != nil {
			return err
		}
		out = in
		if in.Status == status {
			return nil
		}
		err = tx.QueryRow(ctx, `UPDATE integrations SET status = $3, updated_at = now(),
			stopped_at = CASE WHEN $3 = 'stopped' THEN now() ELSE stopped_at END,
			completed_at = CASE WHEN $4 = 'integration_completed' THEN now() ELSE completed_at END
			WHERE tenant = $1 AND id = $2 RETURNING updated_at, stopped_at, completed_at`,
			tenant, id, status, action).Scan(&in.UpdatedAt, &in.StoppedAt, &in.CompletedAt)
		if err != nil {
			return fmt.Errorf("setting status: %w", err)
		}
		in.Status = status
		return addLog(ctx, tx, tenant, id, action, reason)
	})
	if refusedContent(err) {
		return out, fmt.Errorf("%w: %w", ErrUnstorable, err)
	}
	if err == nil {
		err = unreadable
	}
	return out, err
}

// DeleteIntegration removes an integration with its logs and rejected events.
func (s *Store) DeleteIntegration(ctx context.Context, tenant, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM integrations WHERE tenant = $1 AND id = $2`, tenant, id)
	if err != nil {
		return fmt.Errorf("deleting integration: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("integration %q: %w", id, ErrNotFound)
	}
	return nil
}

// encode returns the 17 column values of in, secrets sealed, in INSERT order.
func (s *Store) encode(in *Integration) []any {
	var (
		callbackURL, accessKey, region, bucket, prefix *string
		apiKey, signing, awsSecret                     []byte
	)
	if w := in.Webhook; w != nil {
		callbackURL = &w.CallbackURL
		apiKey = s.sealOpt(w.APIKey, in, "api_key")
		signing = s.sealOpt(w.SigningSecret, in, "signing_secret")
	}
	if t := in.S3; t != nil {
		accessKey, region, bucket, prefix = &t.AccessKeyID, &t.Region, &t.Bucket, &t.KeyPrefix
		awsSecret = s.sealOpt(t.SecretAccessKey, in, "aws_secret_access_key")
	}
	return []any{in.Tenant, in.ID, in.Type, in.Status, in.Target(),
		callbackURL, apiKey, signing,
		accessKey, awsSecret, region, bucket, prefix,
		in.EventFilter, in.EntityFilter, in.StartsAt, in.EndsAt}
}

func (s *Store) sealOpt(v string, in *Integration, field string) []byte {
	if v == "" {
		return nil
	}
	return s.box.Seal(v, in.Tenant+"/"+in.ID+"/"+field)
}

func (s *Store) openOpt(b []byte, in *Integration, field string) (string, error) {
	if b == nil {
		return "", nil
	}
	v, err := s.box.Open(b, in.Tenant+"/"+in.ID+"/"+field)
	if err != nil {
		return "", fmt.Errorf("integration %s/%s field %s: %w", in.Tenant, in.ID, field, err)
	}
	return v, nil
}

// collect scans integration rows. A row whose secrets do not decrypt is kept
// with those secrets empty and named in the returned *UnreadableError, so one
// bad row (a key missing from the ring) does not fail a whole list.
func (s *Store) collect(rows pgx.Rows) ([]*Integration, error) {
	defer rows.Close()
	var out []*Integration
	var unreadable *UnreadableError
	bad := func(in *Integration, err error) {
		if unreadable == nil {
			unreadable = &UnreadableError{err: err}
		}
		unreadable.Integrations = append(unreadable.Integrations, in.Tenant+"/"+in.ID)
	}
	for rows.Next() {
		var (
			in                                             Integration
			target                                         string
			callbackURL, accessKey, region, bucket, prefix *string
			apiKey, signing, awsSecret                     []byte
		)
		if err := rows.Scan(&in.Tenant, &in.ID, &in.Generation, &in.Type, &in.Status, &target,
			&callbackURL, &apiKey, &signing,
			&accessKey, &awsSecret, &region, &bucket, &prefix,
			&in.EventFilter, &in.EntityFilter, &in.StartsAt, &in.EndsAt,
			&in.CreatedAt, &in.UpdatedAt, &in.StoppedAt, &in.CompletedAt); err != nil {
			return nil, fmt.Errorf("scanning integration: %w", err)
		}
		var err, err2 error
		switch target {
		case TargetWebhook:
			w := &Webhook{CallbackURL: deref(callbackURL)}
			w.APIKey, err = s.openOpt(apiKey, &in, "api_key")
			w.SigningSecret, err2 = s.openOpt(signing, &in, "signing_secret")
			if err == nil {
				err = err2
			}
			if err != nil {
				// Never half a webhook: without its signing secret a
				// delivery would go out unsigned.
				w.APIKey, w.SigningSecret = "", ""
			}
			in.Webhook = w
		case TargetS3:
			t := &S3Target{AccessKeyID: deref(accessKey), Region: deref(region), Bucket: deref(bucket), KeyPrefix: deref(prefix)}
			t.SecretAccessKey, err = s.openOpt(awsSecret, &in, "aws_secret_access_key")
			in.S3 = t
		}
		if err != nil {
			bad(&in, err)
		}
		out = append(out, &in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading integrations: %w", err)
	}
	if unreadable != nil {
		return out, unreadable
	}
	return out, nil
}

// ErrSecretsUnreadable means an integration's stored secrets could not be
// decrypted: made with a key that is no longer in SECRETS_KEYS, or corrupted.
var ErrSecretsUnreadable = errors.New("integration secrets unreadable")

// UnreadableError names the integrations ("tenant/id") whose secrets could
// not be decrypted. It matches ErrSecretsUnreadable and the decryption error
// (secrets.ErrWrongKey) with errors.Is. The integrations it names were
// returned alongside it with their secrets empty: never deliver with them.
type UnreadableError struct {
	Integrations []string
	err          error
}

func (e *UnreadableError) Error() string {
	return fmt.Sprintf("%d integration(s) with unreadable secrets (%s): %v",
		len(e.Integrations), strings.Join(e.Integrations, ", "), e.err)
}

// Unwrap exposes ErrSecretsUnreadable and the first decryption error.
func (e *UnreadableError) Unwrap() []error { return []error{ErrSecretsUnreadable, e.err} }

// Has reports whether in is one of the unreadable integrations. A nil
// *UnreadableError has none.
func (e *UnreadableError) Has(in *Integration) bool {
	if e == nil || in == nil {
		return false
	}
	return slices.Contains(e.Integrations, in.Tenant+"/"+in.ID)
}

// RotationReport counts what RotateSecrets did, per stored secret.
type RotationReport struct {
	Integrations int // rows looked at
	Rewritten    int // secrets re-encrypted with the ring's first key
	Current      int // secrets already encrypted with the first key
	Unreadable   int // secrets no key of the ring decrypts (left unchanged)
	// UnreadableIDs are the "tenant/id" of rows with an unreadable secret.
	UnreadableIDs []string
}

// RotateSecrets re-encrypts every stored secret with the ring's first key, in
// batches of batch rows, each batch in its own transaction under row locks
// (a concurrent PATCH waits for the batch, then writes with the first key
// itself). It is idempotent: secrets already under the first key are left
// alone, so a run that stopped halfway is simply run again. A secret no key
// decrypts is counted and left as it is; the run goes on.
func (s *Store) RotateSecrets(ctx context.Context, batch int) (RotationReport, error) {
	if batch <= 0 {
		batch = 100
	}
	var rep RotationReport
	afterTenant, afterID := "", ""
	for {
		n := 0
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT tenant, id, api_key_enc, signing_secret_enc, aws_secret_enc
				FROM integrations WHERE (tenant, id) > ($1, $2) ORDER BY tenant, id LIMIT $3 FOR UPDATE`,
				afterTenant, afterID, batch)
			if err != nil {
				return fmt.Errorf("reading secrets: %w", err)
			}
			type row struct {
				tenant, id string
				enc        [3][]byte
			}
			list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var x row
				err := r.Scan(&x.tenant, &x.id, &x.enc[0], &x.enc[1], &x.enc[2])
				return x, err
			})
			if err != nil {
				return fmt.Errorf("reading secrets: %w", err)
			}
			n = len(list)
			fields := [3]string{"api_key", "signing_secret", "aws_secret_access_key"}
			for _, r := range list {
				afterTenant, afterID = r.tenant, r.id
				rep.Integrations++
				changed, unreadable := false, false
				for i, ct := range r.enc {
					if ct == nil {
						continue
					}
					if s.box.IsCurrent(ct) {
						rep.Current++
						continue
					}
					ad := r.tenant + "/" + r.id + "/" + fields[i]
					pt, err := s.box.Open(ct, ad)
					if err != nil {
						rep.Unreadable++
						unreadable = true
						continue
					}
					r.enc[i] = s.box.Seal(pt, ad)
					rep.Rewritten++
					changed = true
				}
				if unreadable {
					rep.UnreadableIDs = append(rep.UnreadableIDs, r.tenant+"/"+r.id)
				}
				if !changed {
					continue
				}
				if _, err := tx.Exec(ctx, `UPDATE integrations SET api_key_enc = $3, signing_secret_enc = $4, aws_secret_enc = $5
					WHERE tenant = $1 AND id = $2`, r.tenant, r.id, r.enc[0], r.enc[1], r.enc[2]); err != nil {
					return fmt.Errorf("rewriting secrets of %s/%s: %w", r.tenant, r.id, err)
				}
			}
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("rotating secrets: %w", err)
		}
		if n < batch {
			return rep, nil
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
