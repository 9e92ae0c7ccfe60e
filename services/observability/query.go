package observability

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/httpapi"
)

// Paging bounds of the list.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// maxValueLen caps any one query value: ids are short (integration ids
	// at most 50 characters), and a huge value only costs the database.
	maxValueLen = 512
)

// Filter selects publish attempts of one tenant. Zero fields do not filter.
// The same filter serves the list, the export, the summary and the live tail.
type Filter struct {
	From, To         time.Time // attempted_at in [From, To)
	EventName        string
	IntegrationID    string
	Status           string // catalog.AttemptSuccess | catalog.AttemptFailure
	DomainEntityID   string
	DomainEntityType string
}

// Query is a parsed list request: the filter plus paging.
type Query struct {
	Filter
	Limit    int
	After    *Cursor // nil on the first page
	limitSet bool
}

// Cursor is the keyset position after the last event of a page: the next
// page holds the events strictly after it in (attempted_at DESC, id DESC,
// pos) order, pos being an event's position inside its row (an S3 file's row
// holds all its events; a page may end inside one). Rows are never updated
// and (attempted_at, id) is unique, so the position never shifts when rows
// are inserted between pages: every event that existed when the first page
// was read comes exactly once, and no event comes twice.
//
// A row inserted later with an attempted_at behind the cursor does show up
// on a later page. The cursor deliberately carries no upper id bound to hide
// it: ids come from a sequence cached per connection (blocks of 1000) and
// commit out of order, so "id <= max id at the first page" would hide some
// late rows and not others, while adding nothing to the guarantee above.
type Cursor struct {
	AttemptedAt time.Time
	ID          int64
	Pos         int64
	// filters is a digest of the filter the cursor was made for; a cursor
	// replayed with other filters is refused instead of paging nonsense.
	filters [8]byte
}

// queryParams are every parameter the list accepts, for the "unknown
// parameter" check and its message.
var queryParams = []string{"from", "to", "event_name", "integration_id", "status",
	"domain_entity_id", "domain_entity_type", "limit", "cursor"}

// ParseQuery validates raw query parameters. allowPaging is false for the
// summary and the live tail, where limit and cursor mean nothing. Every error
// is a 400 *httpapi.Error naming the offending parameter.
func ParseQuery(v url.Values, allowPaging bool) (Query, error) {
	q := Query{Limit: DefaultLimit}
	for name, vals := range v {
		if !known(name, allowPaging) {
			return Query{}, badParam("unknown query parameter %s (accepted: %s)", quoteParam(name), strings.Join(accepted(allowPaging), ", "))
		}
		if len(vals) != 1 {
			return Query{}, badParam("query parameter %s is given %d times; give it once", name, len(vals))
		}
		if err := checkText(name, vals[0]); err != nil {
			return Query{}, err
		}
	}
	var err error
	if q.From, err = parseTime(v, "from"); err != nil {
		return Query{}, err
	}
	if q.To, err = parseTime(v, "to"); err != nil {
		return Query{}, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
		return Query{}, badParam("from (%s) is after to (%s)", events.FormatTime(q.From), events.FormatTime(q.To))
	}
	if s := v.Get("event_name"); s != "" {
		if !events.IsKnownName(s) {
			return Query{}, badParam("event_name %q is not a known event name", s)
		}
		q.EventName = s
	}
	if s := v.Get("domain_entity_type"); s != "" {
		if !events.IsKnownEntityType(s) {
			return Query{}, badParam("domain_entity_type %q is not a known entity type (one of %s)",
				s, strings.Join(events.EntityTypes(), ", "))
		}
		q.DomainEntityType = s
	}
	if s := v.Get("status"); s != "" {
		switch strings.ToUpper(s) {
		case catalog.AttemptSuccess:
			q.Status = catalog.AttemptSuccess
		case catalog.AttemptFailure:
			q.Status = catalog.AttemptFailure
		default:
			return Query{}, badParam("status %q is neither success nor failure", s)
		}
	}
	q.IntegrationID = v.Get("integration_id")
	q.DomainEntityID = v.Get("domain_entity_id")
	if s, ok := v["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > MaxLimit {
			return Query{}, badParam("limit %q is not an integer from 1 to %d", s[0], MaxLimit)
		}
		q.Limit, q.limitSet = n, true
	}
	if s, ok := v["cursor"]; ok {
		c, err := decodeCursor(s[0])
		if err != nil || c.filters != q.digest() {
			return Query{}, badParam("cursor is not one this list issued for these filters; start again without it")
		}
		q.After = &c
	}
	return q, nil
}

func known(name string, allowPaging bool) bool {
	for _, p := range accepted(allowPaging) {
		if p == name {
			return true
		}
	}
	return false
}

func accepted(allowPaging bool) []string {
	if allowPaging {
		return queryParams
	}
	return queryParams[:7]
}

// checkText refuses values no filter could match and that only cost a query:
// invalid UTF-8 (Postgres would refuse it: a 500), control characters (NUL
// among them), and very long values.
func checkText(name, s string) error {
	switch {
	case s == "":
		return badParam("query parameter %s is empty", name)
	case len(s) > maxValueLen:
		return badParam("query parameter %s is longer than %d bytes", name, maxValueLen)
	case !utf8.ValidString(s):
		return badParam("query parameter %s is not valid UTF-8", name)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return badParam("query parameter %s contains a control character", name)
	}
	return nil
}

func parseTime(v url.Values, name string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, upperRFC3339(s))
	if u := t.UTC(); err != nil || u.Year() < 1 || u.Year() > 9999 {
		// Also refused: an offset moving the instant out of years 1-9999
		// in UTC, where the answers are written.
		hint := ""
		if strings.Contains(s, " ") {
			// An unencoded "+01:00" offset arrives as " 01:00".
			hint = " (encode a '+' offset as %2B)"
		}
		return time.Time{}, badParam("%s %q is not an RFC 3339 date-time, e.g. 2023-01-31T23:59:59Z%s", name, s, hint)
	}
	// Postgres keeps microseconds; round here so the bound means the same
	// thing in SQL and in the live tail's in-memory filter.
	return t.UTC().Truncate(time.Microsecond), nil
}

// upperRFC3339 writes the "t" separator and the "z" zone of an RFC 3339
// date-time in upper case, the only case time.Parse accepts: RFC 3339
// section 5.6 (NOTE) allows either. The date is fixed-width, so the
// separator is the 11th byte; anything else is left for time.Parse to
// refuse.
func upperRFC3339(s string) string {
	if len(s) > 10 && s[10] == 't' {
		s = s[:10] + "T" + s[11:]
	}
	if strings.HasSuffix(s, "z") {
		s = s[:len(s)-1] + "Z"
	}
	return s
}

// quoteParam shows a parameter name safely inside a message: it may be
// anything a client typed, including invalid UTF-8.
func quoteParam(name string) string {
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	return strconv.QuoteToASCII(name)
}

// badParam is the 400 for a bad query parameter; the message names it.
func badParam(format string, args ...any) error {
	return httpapi.NewError(http.StatusBadRequest, "invalid_parameter", fmt.Sprintf(format, args...))
}

// digest identifies the filter for cursor binding.
func (f Filter) digest() [8]byte {
	h := sha256.New()
	for _, s := range []string{f.EventName, f.IntegrationID, f.Status, f.DomainEntityID, f.DomainEntityType,
		fmtBound(f.From), fmtBound(f.To)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var d [8]byte
	copy(d[:], h.Sum(nil))
	return d
}

func fmtBound(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// Cursor wire form: version byte, attempted_at (unix µs), id, pos (version
// 2 only), filter digest, base64url without padding. Opaque to clients.
// Version 1 (before file rows, no pos) is still read: it meant "after the
// whole row".
const (
	cursorVersion   = 2
	cursorVersionV1 = 1
)

// NextCursor is the cursor after event pos of row id of a page listed with f.
func NextCursor(f Filter, attemptedAt time.Time, id, pos int64) string {
	var b [1 + 8 + 8 + 8 + 8]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(attemptedAt.UnixMicro()))
	binary.BigEndian.PutUint64(b[9:], uint64(id))
	binary.BigEndian.PutUint64(b[17:], uint64(pos))
	d := f.digest()
	copy(b[25:], d[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 1 {
		return Cursor{}, fmt.Errorf("malformed cursor")
	}
	var c Cursor
	switch {
	case b[0] == cursorVersion && len(b) == 33:
		c.Pos = int64(binary.BigEndian.Uint64(b[17:]))
		copy(c.filters[:], b[25:])
	case b[0] == cursorVersionV1 && len(b) == 25:
		c.Pos = math.MaxInt64
		copy(c.filters[:], b[17:])
	default:
		return Cursor{}, fmt.Errorf("malformed cursor")
	}
	c.AttemptedAt = time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:]))).UTC()
	c.ID = int64(binary.BigEndian.Uint64(b[9:]))
	if c.ID <= 0 || c.Pos < 0 || c.AttemptedAt.Year() < 1 || c.AttemptedAt.Year() > 9999 {
		return Cursor{}, fmt.Errorf("malformed cursor")
	}
	return c, nil
}
