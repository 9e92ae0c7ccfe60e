package chaos

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventstream/eventstream/pkg/catalog"
)

// Fault is one kind of breakage: Inject breaks something, Heal repairs it.
// The schedule holds a fault for a while between the two.
type Fault interface {
	// Kind is the fault's kind as the report counts it (e.g. worker-sigkill).
	Kind() string
	// Name says what exactly was broken (e.g. worker-sigkill worker 1).
	Name() string
	Inject(ctx context.Context) error
	Heal(ctx context.Context) error
	// Affects are the integrations whose delivery the fault disturbs; the
	// report measures their recovery after Heal.
	Affects() []*integration
}

// Fault kinds, in the order the report lists them.
const (
	KindWorkerKill      = "worker-sigkill"
	KindWorkerTerm      = "worker-sigterm"
	KindPostgresPause   = "postgres-pause"
	KindPostgresRestart = "postgres-restart"
	KindBrokerErrors    = "broker-errors"
	KindBrokerRestart   = "broker-restart"
	KindWebhook5xx      = "webhook-5xx"
	KindWebhook429      = "webhook-429"
	KindWebhookHostile  = "webhook-hostile"
	KindWebhookSlow     = "webhook-slow"
	KindWebhookReset    = "webhook-reset"
	KindS3Error         = "s3-5xx"
	KindS3DropComplete  = "s3-drop-complete"
)

// Kinds lists every fault kind.
var Kinds = []string{
	KindWorkerKill, KindWorkerTerm, KindPostgresPause, KindPostgresRestart,
	KindBrokerErrors, KindBrokerRestart, KindWebhook5xx, KindWebhook429,
	KindWebhookHostile, KindWebhookSlow, KindWebhookReset, KindS3Error, KindS3DropComplete,
}

// workerFault kills (SIGKILL) or stops (SIGTERM, a drain) one worker; Heal
// starts it again.
type workerFault struct {
	w   *workers
	i   int
	sig syscall.Signal
	all []*integration
}

func (f *workerFault) Kind() string {
	if f.sig == syscall.SIGKILL {
		return KindWorkerKill
	}
	return KindWorkerTerm
}
func (f *workerFault) Name() string                 { return fmt.Sprintf("%s worker %d", f.Kind(), f.i) }
func (f *workerFault) Affects() []*integration      { return f.all }
func (f *workerFault) Inject(context.Context) error { return f.w.signal(f.i, f.sig, 30*time.Second) }
func (f *workerFault) Heal(context.Context) error   { return f.w.start(f.i) }

// postgresPause freezes every Postgres process (SIGSTOP): connections hang
// rather than fail, as on a stalled host or a long lock.
type postgresPause struct {
	pg  *postgres
	all []*integration
}

func (f *postgresPause) Kind() string                 { return KindPostgresPause }
func (f *postgresPause) Name() string                 { return KindPostgresPause }
func (f *postgresPause) Affects() []*integration      { return f.all }
func (f *postgresPause) Inject(context.Context) error { return f.pg.signal(syscall.SIGSTOP) }
func (f *postgresPause) Heal(context.Context) error   { return f.pg.signal(syscall.SIGCONT) }

// postgresRestart shuts Postgres down (connections cut) and starts it again
// on the same port and data.
type postgresRestart struct {
	pg  *postgres
	all []*integration
}

func (f *postgresRestart) Kind() string                 { return KindPostgresRestart }
func (f *postgresRestart) Name() string                 { return KindPostgresRestart }
func (f *postgresRestart) Affects() []*integration      { return f.all }
func (f *postgresRestart) Inject(context.Context) error { return f.pg.stop() }
func (f *postgresRestart) Heal(ctx context.Context) error {
	return f.pg.start(ctx)
}

// brokerErrors answers one request kind with a Kafka error while held.
type brokerErrors struct {
	b    *broker
	key  kmsg.Key
	code *kerr.Error
	all  []*integration
}

// brokerErrorChoices are the (request, error) pairs the schedule picks from.
// Fetch always drops the connection (see broker.control).
var brokerErrorChoices = []struct {
	key  kmsg.Key
	code *kerr.Error
}{
	{kmsg.Produce, kerr.NotLeaderForPartition},
	{kmsg.Produce, kerr.RequestTimedOut},
	{kmsg.Fetch, kerr.UnknownServerError},
	{kmsg.OffsetCommit, kerr.CoordinatorNotAvailable},
	{kmsg.OffsetCommit, kerr.RebalanceInProgress},
	{kmsg.OffsetCommit, kerr.UnknownServerError},
}

func (f *brokerErrors) Kind() string { return KindBrokerErrors }
func (f *brokerErrors) Name() string {
	if f.key == kmsg.Fetch {
		return "broker-errors Fetch (connection dropped)"
	}
	return fmt.Sprintf("broker-errors %s %s", kmsg.NameForKey(int16(f.key)), f.code.Message)
}
func (f *brokerErrors) Affects() []*integration { return f.all }
func (f *brokerErrors) Inject(context.Context) error {
	f.b.setFailing(f.key, f.code)
	return nil
}
func (f *brokerErrors) Heal(context.Context) error {
	f.b.setFailing(f.key, nil)
	return nil
}

// brokerRestart closes the broker (it persists to its data dir) and opens it
// again on the same address.
type brokerRestart struct {
	b   *broker
	all []*integration
}

func (f *brokerRestart) Kind() string                 { return KindBrokerRestart }
func (f *brokerRestart) Name() string                 { return KindBrokerRestart }
func (f *brokerRestart) Affects() []*integration      { return f.all }
func (f *brokerRestart) Inject(context.Context) error { f.b.stop(); return nil }
func (f *brokerRestart) Heal(context.Context) error   { return f.b.start() }

// endpointFault switches one webhook receiver to a misbehaviour.
type endpointFault struct {
	in   *integration
	mode string
}

func (f *endpointFault) Kind() string                 { return "webhook-" + f.mode }
func (f *endpointFault) Name() string                 { return fmt.Sprintf("webhook-%s %s", f.mode, f.in.key()) }
func (f *endpointFault) Affects() []*integration      { return []*integration{f.in} }
func (f *endpointFault) Inject(context.Context) error { f.in.receiver.setMode(f.mode); return nil }
func (f *endpointFault) Heal(context.Context) error   { f.in.receiver.setMode(endpointOK); return nil }

// s3Fault makes the S3 endpoint answer errors, or drop the reply to
// CompleteMultipartUpload after completing it.
type s3Fault struct {
	e      *s3Endpoint
	mode   int
	status int
	s3     []*integration
	before int // dropped completions before Inject
}

func (f *s3Fault) Kind() string {
	if f.mode == s3DropComplete {
		return KindS3DropComplete
	}
	return KindS3Error
}
func (f *s3Fault) Name() string {
	if f.mode == s3DropComplete {
		return KindS3DropComplete
	}
	return fmt.Sprintf("s3-%d", f.status)
}
func (f *s3Fault) Affects() []*integration { return f.s3 }
func (f *s3Fault) Inject(context.Context) error {
	f.before = f.e.droppedCount()
	f.e.setMode(f.mode, f.status)
	if f.mode == s3DropComplete && f.e.onDropArmed != nil {
		f.e.onDropArmed()
	}
	return nil
}

// Heal of s3-drop-complete first waits (up to 30 s) for a completion to
// drop: multipart files close only every few seconds, and a fault that
// dropped nothing tested nothing.
func (f *s3Fault) Heal(ctx context.Context) error {
	if f.mode == s3DropComplete {
		_ = waitUntil(ctx, 30*time.Second, func() bool { return f.e.droppedCount() > f.before })
	}
	f.e.setMode(s3OK, 0)
	return nil
}

var s3ErrorStatuses = []int{http.StatusInternalServerError, http.StatusServiceUnavailable}

// fault builds the Fault a schedule step names, on the target it draws.
func (s *system) fault(st Step) Fault {
	// Recovery after process and infrastructure faults is measured on the
	// webhook integrations: an S3 integration shows a delivery only when a
	// file closes (S3_MAX_FILE_AGE later), which would measure the file age.
	var hooks, s3s []*integration
	for _, in := range s.integs {
		if in.Target == catalog.TargetS3 {
			s3s = append(s3s, in)
		} else {
			hooks = append(hooks, in)
		}
	}
	switch st.Kind {
	case KindWorkerKill:
		return &workerFault{w: s.workers, i: st.Target % s.opts.Workers, sig: syscall.SIGKILL, all: hooks}
	case KindWorkerTerm:
		return &workerFault{w: s.workers, i: st.Target % s.opts.Workers, sig: syscall.SIGTERM, all: hooks}
	case KindPostgresPause:
		return &postgresPause{pg: s.pg, all: hooks}
	case KindPostgresRestart:
		return &postgresRestart{pg: s.pg, all: hooks}
	case KindBrokerErrors:
		c := brokerErrorChoices[st.Target%len(brokerErrorChoices)]
		return &brokerErrors{b: s.broker, key: c.key, code: c.code, all: hooks}
	case KindBrokerRestart:
		return &brokerRestart{b: s.broker, all: hooks}
	case KindS3Error:
		return &s3Fault{e: s.s3, mode: s3Error, status: s3ErrorStatuses[st.Target%len(s3ErrorStatuses)], s3: s3s}
	case KindS3DropComplete:
		return &s3Fault{e: s.s3, mode: s3DropComplete, s3: s3s}
	}
	mode := map[string]string{
		KindWebhook5xx: endpoint5xx, KindWebhook429: endpoint429, KindWebhookHostile: endpointHostile,
		KindWebhookSlow: endpointSlow, KindWebhookReset: endpointReset,
	}[st.Kind]
	return &endpointFault{in: hooks[st.Target%len(hooks)], mode: mode}
}
