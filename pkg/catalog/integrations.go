package catalog

import (
	"context"
	"errors"
	"fmt"

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

// GetIntegration returns one integration of tenant, or ErrNotFound.
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
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("integration %q: %w", id, ErrNotFound)
	}
	return list[0], nil
}

// ListIntegrations returns a tenant's integrations ordered by creation.
func (s *Store) ListIntegrations(ctx context.Context, tenant string) ([]*Integration, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+integrationColumns+` FROM integrations WHERE tenant = $1 ORDER BY created_at, id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing integrations: %w", err)
	}
	return s.collect(rows)
}

// ListRunning returns the running integrations of the given tenants; a nil
// tenants slice means every tenant.
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
// target, starts_at and ends_at are immutable and not written back.
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
// nothing, so repeated _start/_stop calls are harmless.
func (s *Store) SetStatus(ctx context.Context, tenant, id, status, action, reason string) (*Integration, error) {
	var out *Integration
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		in, err := s.getIntegration(ctx, tx, tenant, id, true)
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

func (s *Store) collect(rows pgx.Rows) ([]*Integration, error) {
	defer rows.Close()
	var out []*Integration
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
		var err error
		switch target {
		case TargetWebhook:
			w := &Webhook{CallbackURL: deref(callbackURL)}
			if w.APIKey, err = s.openOpt(apiKey, &in, "api_key"); err != nil {
				return nil, err
			}
			if w.SigningSecret, err = s.openOpt(signing, &in, "signing_secret"); err != nil {
				return nil, err
			}
			in.Webhook = w
		case TargetS3:
			t := &S3Target{AccessKeyID: deref(accessKey), Region: deref(region), Bucket: deref(bucket), KeyPrefix: deref(prefix)}
			if t.SecretAccessKey, err = s.openOpt(awsSecret, &in, "aws_secret_access_key"); err != nil {
				return nil, err
			}
			in.S3 = t
		}
		out = append(out, &in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading integrations: %w", err)
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
