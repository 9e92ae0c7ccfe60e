// Package catalog is the Postgres catalog every service shares: tenants, their
// integrations (secrets encrypted at rest), integration logs and rejected events.
// Every query is scoped by tenant; a caller can never reach another tenant's rows.
package catalog

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventstream/eventstream/pkg/secrets"
)

// Sentinel errors callers map to API responses.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("already exists")
	ErrLimitReached = errors.New("integration limit reached")
	// ErrRejectedFull means an integration already holds MaxRejectedEvents.
	ErrRejectedFull = errors.New("rejected events limit reached")
	// ErrUnstorable means Postgres refused a row for its content, even made
	// safe: writing it again cannot succeed.
	ErrUnstorable = errors.New("refused by the catalog")
)

// Integration types, statuses and targets as they appear in the API.
const (
	TypePermanent = "permanent"
	TypeTemporary = "temporary"
	StatusRunning = "running"
	StatusStopped = "stopped"
	TargetWebhook = "webhook"
	TargetS3      = "s3"
)

// Log actions.
const (
	ActionStarted   = "integration_started"
	ActionStopped   = "integration_stopped"
	ActionCompleted = "integration_completed"
	ActionRetry     = "retry_triggered"
)

// MaxRejectedEvents is how many rejected events one integration keeps.
const MaxRejectedEvents = 30

// Integration is one tenant subscription.
type Integration struct {
	Tenant     string
	ID         string
	Generation int64
	Type       string
	Status     string
	Webhook    *Webhook // exactly one of Webhook and S3 is set
	S3         *S3Target
	// EventFilter and EntityFilter are nil when the condition is absent.
	EventFilter  []string
	EntityFilter []string
	StartsAt     *time.Time
	EndsAt       *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
	StoppedAt    *time.Time
	CompletedAt  *time.Time
}

// Target names the integration's target kind.
func (i *Integration) Target() string {
	if i.S3 != nil {
		return TargetS3
	}
	return TargetWebhook
}

// HasFilter reports whether any filter condition is set.
func (i *Integration) HasFilter() bool { return i.EventFilter != nil || i.EntityFilter != nil }

// Webhook is a webhook target. APIKey and SigningSecret are plaintext in memory.
type Webhook struct {
	CallbackURL   string
	APIKey        string
	SigningSecret string
}

// S3Target is an S3 bucket target. SecretAccessKey is plaintext in memory.
type S3Target struct {
	AccessKeyID     string
	SecretAccessKey string
	Region          string
	Bucket          string
	KeyPrefix       string
}

// LogEntry is one line of an integration's log.
type LogEntry struct {
	Action    string
	Reason    string
	CreatedAt time.Time
	// Repeats is how many times the entry happened (coalesced retries),
	// the last time at LastAt.
	Repeats int
	LastAt  time.Time
}

// Text is the reason as the API shows it: with a count of its repeats.
func (e LogEntry) Text() string {
	if e.Repeats <= 1 {
		return e.Reason
	}
	return fmt.Sprintf("%s (%d times, the last at %s)", e.Reason, e.Repeats, e.LastAt.UTC().Format("2006-01-02T15:04:05.000Z"))
}

// RejectedEvent is an event the endpoint answered with 400.
type RejectedEvent struct {
	Tenant         string
	IntegrationID  string
	EventID        string
	EventName      string
	IdempotencyKey string
	DomainEntityID string
	Body           []byte // the JSON body exactly as sent
	ResponseCode   int
	ResponseBody   string
	CreatedAt      time.Time
}

// Store reads and writes the catalog.
type Store struct {
	pool *pgxpool.Pool
	box  *secrets.Box
}

// New returns a Store over pool that encrypts secrets with box.
func New(pool *pgxpool.Pool, box *secrets.Box) *Store {
	return &Store{pool: pool, box: box}
}

// WithPool returns a Store over pool with s's secrets: a worker gives its
// supervisor a pool of its own, so hot-path writes cannot starve the reads
// that keep integrations confirmed running.
func (s *Store) WithPool(pool *pgxpool.Pool) *Store { return &Store{pool: pool, box: s.box} }

// Pool exposes the connection pool for packages that own their own tables
// (attempt records) and for health checks.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
