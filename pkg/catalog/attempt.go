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
//
// An S3 file's attempt is stored as rows of many events (the S3 sink puts up
// to a few thousand of the file's events in each): FileEvents lists them in
// file order and EventID, DomainEntityID, DomainEntityType and EventName are
// unused. The observability API shows such a row as one attempt per event,
// all with the row's outcome and filename.
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
	FileEvents       []FileEvent
}

// FileEvent is one event of an S3 file's attempt row.
type FileEvent struct {
	EventID          string // UUID
	DomainEntityID   string
	DomainEntityType string
	EventName        string
}

// weight is what a row costs a COPY batch: a file row weighs its events.
func (a *Attempt) weight() int { return max(1, len(a.FileEvents)) }
