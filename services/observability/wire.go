package observability

import (
	"github.com/eventstream/eventstream/pkg/events"
)

// The response bodies, shaped like the reference product's samples
// (shared/seeds/observability-api.txt); field order follows them.

// attemptJSON is one element of the list (and one line of the export, one
// event of the live tail).
type attemptJSON struct {
	IntegrationID    string        `json:"integration_id"`
	IntegrationType  string        `json:"integration_type"`
	Target           string        `json:"target"`
	Status           string        `json:"status"`
	AttemptedAt      string        `json:"attempted_at"`
	RetriesRemaining int           `json:"retries_remaining"`
	EntityID         string        `json:"entity_id"`
	DomainEntityID   string        `json:"domain_entity_id"`
	DomainEntityType string        `json:"domain_entity_type"`
	EventName        string        `json:"event_name"`
	URL              *string       `json:"url,omitempty"`
	Filename         *string       `json:"filename,omitempty"`
	Response         *responseJSON `json:"response,omitempty"`
	ResponseTimeMS   *int          `json:"response_time_ms,omitempty"`
}

// responseJSON is what the endpoint answered; absent when nothing answered
// (timeout, connection refused).
type responseJSON struct {
	Body string `json:"body"`
	Code int    `json:"code"`
}

func toJSON(a *Attempt) attemptJSON {
	out := attemptJSON{
		IntegrationID: a.IntegrationID, IntegrationType: a.IntegrationType, Target: a.Target, Status: a.Status,
		AttemptedAt: events.FormatTime(a.AttemptedAt), RetriesRemaining: a.RetriesRemaining, EntityID: a.EventID,
		DomainEntityID: a.DomainEntityID, DomainEntityType: a.DomainEntityType, EventName: a.EventName,
		URL: a.URL, Filename: a.Filename, ResponseTimeMS: a.ResponseTimeMS,
	}
	if a.ResponseCode != nil {
		out.Response = &responseJSON{Code: *a.ResponseCode}
		if a.ResponseBody != nil {
			out.Response.Body = *a.ResponseBody
		}
	}
	return out
}

type countsJSON struct {
	Total   int64 `json:"total"`
	Success int64 `json:"success"`
	Failure int64 `json:"failure"`
}

func toCounts(c Counts) countsJSON {
	return countsJSON{Total: c.Total(), Success: c.Success, Failure: c.Failure}
}

type integrationCountsJSON struct {
	IntegrationID string `json:"integration_id"`
	countsJSON
}

type eventCountsJSON struct {
	EventName string `json:"event_name"`
	countsJSON
}

type percentilesJSON struct {
	P50 *int `json:"p50"`
	P95 *int `json:"p95"`
	P99 *int `json:"p99"`
}

type bucketJSON struct {
	Start   string `json:"start"`
	Success int64  `json:"success"`
	Failure int64  `json:"failure"`
}

type seriesJSON struct {
	BucketSeconds int64        `json:"bucket_seconds"`
	Buckets       []bucketJSON `json:"buckets"`
}

// summaryJSON is the body of GET .../published-events/summary.
type summaryJSON struct {
	From           string                  `json:"from"`
	To             string                  `json:"to"`
	Totals         countsJSON              `json:"totals"`
	ByIntegration  []integrationCountsJSON `json:"by_integration"`
	ByEventName    []eventCountsJSON       `json:"by_event_name"`
	ResponseTimeMS percentilesJSON         `json:"response_time_ms"`
	Series         seriesJSON              `json:"series"`
}

func toSummaryJSON(s *Summary) summaryJSON {
	out := summaryJSON{
		From: events.FormatTime(s.From), To: events.FormatTime(s.To), Totals: toCounts(s.Totals),
		ByIntegration:  make([]integrationCountsJSON, 0, len(s.ByIntegration)),
		ByEventName:    make([]eventCountsJSON, 0, len(s.ByEventName)),
		ResponseTimeMS: percentilesJSON{P50: s.P50, P95: s.P95, P99: s.P99},
		Series:         seriesJSON{BucketSeconds: int64(s.Bucket.Seconds()), Buckets: make([]bucketJSON, 0, len(s.Series))},
	}
	for _, n := range s.ByIntegration {
		out.ByIntegration = append(out.ByIntegration, integrationCountsJSON{IntegrationID: n.Name, countsJSON: toCounts(n.Counts)})
	}
	for _, n := range s.ByEventName {
		out.ByEventName = append(out.ByEventName, eventCountsJSON{EventName: n.Name, countsJSON: toCounts(n.Counts)})
	}
	for _, b := range s.Series {
		out.Series.Buckets = append(out.Series.Buckets, bucketJSON{Start: events.FormatTime(b.Start), Success: b.Success, Failure: b.Failure})
	}
	return out
}
