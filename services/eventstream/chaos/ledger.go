package chaos

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/eventstream/eventstream/pkg/events"
)

// integration is one registered integration and what the suite expects of it.
type integration struct {
	Tenant string
	ID     string
	Target string // webhook | s3
	// EventFilter and EntityFilter are its filter_conditions (none: all).
	EventFilter  []string
	EntityFilter []string
	filter       events.Filter

	secret   string    // webhook signing secret
	bucket   string    // s3
	receiver *receiver // webhook
}

func (in *integration) key() string { return in.Tenant + "/" + in.ID }

func (in *integration) wants(name string) bool {
	et, _ := events.EntityType(name)
	return in.filter.Match(name, et)
}

// published is an event the ingest API accepted (202).
type published struct {
	tenant, name, key string
}

// observation is one event an endpoint received as delivered.
type observation struct {
	eventID, tenant, name, key string
	badSignature               bool
}

// Ledger holds what was published and what each integration's endpoint
// received, and answers what is missing.
type Ledger struct {
	mu sync.Mutex
	// accepted are the events ingest acknowledged, by event id.
	accepted map[string]published
	// attempted are the ids of every event a publish request carried,
	// acknowledged or not (an unacknowledged one may still be in the log).
	attempted map[string]string // event id → tenant
	seen      map[string]map[string]int
	// firstSeen is when each integration first received each event.
	firstSeen map[string]map[string]time.Time
	// deliveredAt are the times of each integration's deliveries, in order.
	deliveredAt map[string][]time.Time
	// problems are deliveries that must never happen: another tenant's event,
	// an unknown event, a bad signature.
	problems     []string
	crossTenant  int
	badSignature int
	unknown      int
}

func newLedger() *Ledger {
	return &Ledger{
		accepted:    map[string]published{},
		attempted:   map[string]string{},
		seen:        map[string]map[string]int{},
		firstSeen:   map[string]map[string]time.Time{},
		deliveredAt: map[string][]time.Time{},
	}
}

func (l *Ledger) attempt(tenant, id string) {
	l.mu.Lock()
	l.attempted[id] = tenant
	l.mu.Unlock()
}

func (l *Ledger) accept(id string, p published) {
	l.mu.Lock()
	l.accepted[id] = p
	l.mu.Unlock()
}

func (l *Ledger) acceptedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted)
}

// observe records that in's endpoint received an event as delivered.
func (l *Ledger) observe(in *integration, o observation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observeLocked(in, o, time.Now())
}

func (l *Ledger) observeLocked(in *integration, o observation, at time.Time) {
	k := in.key()
	if o.eventID == "" && o.name != "" {
		o.eventID = events.EventID(o.tenant, o.name, o.key).String()
	}
	switch owner, ok := l.attempted[o.eventID]; {
	case o.badSignature:
		l.badSignature++
		l.problem("%s: event %s arrived with a signature that does not verify", k, o.eventID)
	case o.tenant != in.Tenant || (ok && owner != in.Tenant):
		l.crossTenant++
		l.problem("%s: received event %s of tenant %q (body says %q)", k, o.eventID, owner, o.tenant)
	case !ok:
		l.unknown++
		l.problem("%s: received event %q that was never published", k, o.eventID)
	case o.key != "" && events.EventID(o.tenant, o.name, o.key).String() != o.eventID:
		l.unknown++
		l.problem("%s: webhook-id %s does not match the body's event (%s, key %s)", k, o.eventID, o.name, o.key)
	}
	if l.seen[k] == nil {
		l.seen[k] = map[string]int{}
		l.firstSeen[k] = map[string]time.Time{}
	}
	if l.seen[k][o.eventID] == 0 {
		l.firstSeen[k][o.eventID] = at
	}
	l.seen[k][o.eventID]++
	l.deliveredAt[k] = append(l.deliveredAt[k], at)
}

func (l *Ledger) problem(format string, args ...any) {
	if len(l.problems) < 50 {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	}
}

// expected returns the accepted events in should receive.
func (l *Ledger) expected(in *integration) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for id, p := range l.accepted {
		if p.tenant == in.Tenant && in.wants(p.name) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// missing returns the expected events in has not received.
func (l *Ledger) missing(in *integration) []string {
	exp := l.expected(in)
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, id := range exp {
		if l.seen[in.key()][id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// delivered returns how many distinct events in received and how many
// receptions were duplicates.
func (l *Ledger) delivered(in *integration) (unique, duplicates int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.seen[in.key()] {
		unique++
		duplicates += n - 1
	}
	return unique, duplicates
}

// deliveredIDs returns the distinct events in received.
func (l *Ledger) deliveredIDs(in *integration) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.seen[in.key()]))
	for id := range l.seen[in.key()] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// receivedAt returns when in first received event id (zero for S3 lines).
func (l *Ledger) receivedAt(in *integration, id string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstSeen[in.key()][id]
}

// firstDeliveryAfter returns when in next received an event at or after t.
func (l *Ledger) firstDeliveryAfter(in *integration, t time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.deliveredAt[in.key()]
	i := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(t) })
	if i == len(ts) {
		return time.Time{}, false
	}
	return ts[i], true
}

// recordS3 records the lines of an S3 integration's objects, read back once
// the run is over (the times of its deliveries come from the endpoint).
func (l *Ledger) recordS3(in *integration, lines []observation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range lines {
		l.observeLocked(in, o, time.Time{})
	}
	k := in.key()
	if l.seen[k] == nil {
		l.seen[k] = map[string]int{}
	}
	l.deliveredAt[k] = nil
}

// missingFrom returns how many expected events of in are not among ids.
func (l *Ledger) missingFrom(in *integration, ids map[string]bool) int {
	n := 0
	for _, id := range l.expected(in) {
		if !ids[id] {
			n++
		}
	}
	return n
}
