package catalog

import "time"

// Attempt statuses as the observability API shows them.
const (
	AttemptSuccess = "SUCCESS"
	AttemptFailure = "FAILURE"
)

// Attempt is one delivery attempt of one event to one integration: a row of
// the publish_attempts table the observability API reads. Delivery writes them
// in batches (see the attempt writer), never one INSERT per event.
type Attempt struct {
	Tenant           string
	IntegrationID    string
	IntegrationType  string // permanent | temporary
	Target           string // webhook | s3
	Status           string // SUCCESS | FAILURE
	AttemptedAt      time.Time
	RetriesRemaining int
	EventID          string // UUID
	DomainEntityID   string
	DomainEntityType string
	EventName        string
	URL              string // webhook targets
	Filename         string // s3 targets: the object key
	ResponseCode     int    // 0 when there was no response (timeout, connection error)
	ResponseBody     string // capped
	ResponseTimeMS   int    // 0 when not measured
}
