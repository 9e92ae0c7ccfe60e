package events

import (
	"strconv"
	"time"

	"github.com/eventstream/eventstream/pkg/events/eventspb"
)

// TimeLayout is how timestamps appear in bodies and APIs: UTC, milliseconds, Z.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// AppendBody appends the JSON object receivers get for ev — the webhook body
// and one line of an S3 file: {"tenant","name","published_at","payload"}.
// The payload bytes are copied verbatim (ingest stored them as a validated JSON
// object), so nothing is re-encoded per event.
func AppendBody(dst []byte, ev *eventspb.Event) []byte {
	dst = append(dst, `{"tenant":`...)
	dst = strconv.AppendQuote(dst, ev.GetTenant())
	dst = append(dst, `,"name":`...)
	dst = strconv.AppendQuote(dst, ev.GetName())
	dst = append(dst, `,"published_at":"`...)
	dst = ev.GetPublishedAt().AsTime().UTC().AppendFormat(dst, TimeLayout)
	dst = append(dst, `","payload":`...)
	if len(ev.GetPayload()) == 0 {
		dst = append(dst, "{}"...)
	} else {
		dst = append(dst, ev.GetPayload()...)
	}
	return append(dst, '}')
}

// FormatTime formats t the way every API shows timestamps.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }
