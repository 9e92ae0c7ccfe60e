package delivery_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// The scale curve: how a worker's cost grows with the integrations it runs.
//
// Set scaleProfilesEnv to a folder to also get, per size, a CPU profile of
// the worker over its idle window (idle CPU then includes the profiler's
// own cost), one over the load phase, and a heap profile after it:
//
//	DELIVERY_SCALE_PROFILES=/tmp/scale go test -run '^$' -bench 'ScaleCurve/integrations=1000$' ./services/delivery/
//	go tool pprof -top -nodecount=30 /tmp/scale/1000-cpu-idle.pprof
//
// and the load phase's receipts in 1000-latency.csv.
const (
	scaleProfilesEnv = "DELIVERY_SCALE_PROFILES"
	// pprofAddrEnv makes a worker process (the re-executed test binary)
	// serve net/http/pprof there; only the scale benchmark sets it.
	pprofAddrEnv = "DELIVERY_TEST_PPROF_ADDR"

	scalePerTenant  = 10 // integrations per tenant, each tenant its own topic
	scalePartitions = 3  // KAFKA_TOPIC_PARTITIONS' default
	scaleSettle     = 5 * time.Second
	scaleIdleWindow = 10 * time.Second
	// scaleLoadSeconds spans a full resync (DELIVERY_RESYNC_INTERVAL, 30s):
	// a worker always runs one every interval, and at 1,000 integrations
	// it once paused every delivery for seconds.
	scaleLoadSeconds = 32
	// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100
	// on every Linux architecture Go supports).
	clockTicks = 100
)

func init() {
	if addr := os.Getenv(pprofAddrEnv); addr != "" && os.Getenv(workerEnv) == "1" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.ListenAndServe() }()
	}
}

// BenchmarkScaleCurve runs 10, 100 and 1,000 webhook integrations (10 per
// tenant, each tenant its own 3-partition topic) on one worker process and
// reports, per size, what the worker costs:
//
//   - startup_s: worker start until every integration delivered a first
//     event (every consumer group joined and fetching);
//   - rss_peak_MB (VmHWM) and rss_steady_MB (VmRSS after the idle window);
//   - idle_cpu_%: CPU time over an idle window (no events, after startup
//     settled), as a percentage of one core;
//   - load_cpu_% and harness_cpu_%: the worker's CPU during the load
//     phase, and this process's (brokers, receiver, producer) for context;
//   - goroutines (the worker's go_goroutines) and broker_conns (established
//     TCP connections of the worker to the brokers);
//   - p50_ms/p99_ms: publish → receipt at 1 event/s per integration, and
//     ack_p99_ms, the broker's acknowledgement of those publishes (when it
//     is high too, the stall was the broker's, not the worker's).
//
// The worker is a separate process (this test binary re-executed as in the
// SIGTERM tests) with the production defaults, so its figures are its own;
// the brokers (kfake, or KAFKA_BROKERS), Postgres and the receiver run here.
func BenchmarkScaleCurve(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("integrations=%d", n), func(b *testing.B) { benchScale(b, n) })
	}
}

func benchScale(b *testing.B, n int) {
	ctx := context.Background()
	store, db := testenv.NewStore(b)
	var brokers []string
	if os.Getenv("KAFKA_BROKERS") != "" {
		brokers = testenv.KafkaBrokers(b)
	} else {
		brokers = testenv.NewKafka(b).ListenAddrs() // its own, so sizes do not share groups
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)

	rcv := newScaleReceiver(b)
	tenants := make([]string, max(1, n/scalePerTenant))
	for i := range tenants {
		tenants[i] = fmt.Sprintf("sc%d-%d-%d", os.Getpid(), n, i)
		if err := store.CreateTenant(ctx, tenants[i]); err != nil {
			b.Fatal(err)
		}
		if err := kafka.EnsureTopic(ctx, adm, events.TopicName(tenants[i]), scalePartitions, 1, kafka.DefaultRetention); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		tenant := tenants[i/scalePerTenant%len(tenants)]
		id := fmt.Sprintf("hook-%d", i)
		in := &catalog.Integration{Tenant: tenant, ID: id, Type: catalog.TypePermanent,
			Webhook: &catalog.Webhook{CallbackURL: rcv.srv.URL + "/" + tenant + "/" + id}}
		if err := store.CreateIntegration(ctx, in, scalePerTenant); err != nil {
			b.Fatal(err)
		}
	}
	brokerPorts := scaleBrokerPorts(b, adm, brokers)
	if os.Getenv("KAFKA_BROKERS") != "" {
		// A shared cluster keeps nothing of the run but the groups (still
		// held by the killed worker's session, they expire with offsets
		// retention). Registered before the worker starts, so it runs
		// after the worker is killed.
		b.Cleanup(func() {
			names := make([]string, len(tenants))
			for i, t := range tenants {
				names[i] = events.TopicName(t)
			}
			if _, err := adm.DeleteTopics(context.Background(), names...); err != nil {
				b.Logf("deleting the benchmark's topics: %v", err)
			}
		})
	}

	profiles := os.Getenv(scaleProfilesEnv)
	pprofAddr := ""
	if profiles != "" {
		pprofAddr = testenv.FreeAddr(b)
	}
	addr := testenv.FreeAddr(b)
	w := startScaleWorker(b, db.URL, brokers, addr, pprofAddr)
	base := "http://" + addr

	// Startup: one event per tenant topic, published at once; every
	// integration receives it once its consumer joined and fetched (a new
	// integration delivers from its registration on, so nothing is missed).
	b.ResetTimer()
	started := time.Now()
	seq := 0
	publish := func(tenant string) {
		seq++
		ev := scaleEvent(tenant, seq)
		r, err := kafka.EncodeRecord(ctx, ev)
		if err != nil {
			b.Fatal(err)
		}
		key := idemKey(ev)
		rcv.published(key, time.Now())
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
			rcv.acked(key, time.Now())
		})
	}
	for _, t := range tenants {
		publish(t)
	}
	testenv.WaitFor(b, 5*time.Minute, fmt.Sprintf("every one of %d integrations delivering", n), func() bool {
		if w.exited() {
			b.Fatalf("worker exited:\n%s", w.tail())
		}
		return rcv.deliveries() >= n
	})
	startup := time.Since(started)

	// Idle: no events. The settling period lets startup work (joins, first
	// commits, the janitor's first pass) end before CPU time is counted.
	time.Sleep(scaleSettle) // a deliberate waiting period, not a wait for a condition
	var cpuProfile chan []byte
	if profiles != "" {
		cpuProfile = make(chan []byte, 1)
		go func() {
			cpuProfile <- scaleGet(b, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, int(scaleIdleWindow.Seconds())))
		}()
	}
	cpu0, at0 := w.cpuTicks(), time.Now()
	time.Sleep(scaleIdleWindow) // the measurement window
	idleCPU := float64(w.cpuTicks()-cpu0) / clockTicks / time.Since(at0).Seconds() * 100
	steadyRSS := w.status("VmRSS")
	goroutines := scaleGoroutines(b, base)
	conns := w.brokerConns(brokerPorts)
	if cpuProfile != nil {
		scaleSave(b, profiles, fmt.Sprintf("%d-cpu-idle.pprof", n), <-cpuProfile)
	}

	// Load: 1 event/s per tenant topic, so 1 event/s per integration, the
	// tenants' publishes spread evenly over each second.
	rcv.resetLatencies()
	if profiles != "" {
		go func() {
			cpuProfile <- scaleGet(b, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, scaleLoadSeconds))
		}()
	}
	loadCPU0, harnessCPU0 := w.cpuTicks(), scaleSelfCPUTicks(b)
	loadStart := time.Now()
	step := time.Second / time.Duration(len(tenants))
	tick := time.NewTicker(step)
	for sent := 0; sent < scaleLoadSeconds*len(tenants); sent++ {
		<-tick.C
		publish(tenants[sent%len(tenants)])
	}
	tick.Stop()
	want := scaleLoadSeconds * n
	testenv.WaitFor(b, 2*time.Minute, fmt.Sprintf("%d deliveries of the load phase", want), func() bool {
		return rcv.latencyCount() >= want
	})
	loadTook := time.Since(loadStart)
	loadCPU := float64(w.cpuTicks()-loadCPU0) / clockTicks / loadTook.Seconds() * 100
	harnessCPU := float64(scaleSelfCPUTicks(b)-harnessCPU0) / clockTicks / loadTook.Seconds() * 100
	b.StopTimer()
	peakRSS := w.status("VmHWM")
	if profiles != "" {
		scaleSave(b, profiles, fmt.Sprintf("%d-cpu-load.pprof", n), <-cpuProfile)
		scaleSave(b, profiles, fmt.Sprintf("%d-heap.pprof", n), scaleGet(b, "http://"+pprofAddr+"/debug/pprof/heap"))
		scaleSave(b, profiles, fmt.Sprintf("%d-memstats.txt", n), scaleGet(b, "http://"+pprofAddr+"/debug/pprof/heap?debug=1"))
		scaleSave(b, profiles, fmt.Sprintf("%d-goroutines.txt", n), scaleGet(b, "http://"+pprofAddr+"/debug/pprof/goroutine?debug=1"))
		scaleSave(b, profiles, fmt.Sprintf("%d-latency.csv", n), rcv.samplesCSV(loadStart))
	}
	p50, p99 := rcv.percentiles()
	ackP99 := rcv.ackP99(loadStart)

	b.ReportMetric(startup.Seconds(), "startup_s")
	b.ReportMetric(float64(peakRSS)/1024, "rss_peak_MB")
	b.ReportMetric(float64(steadyRSS)/1024, "rss_steady_MB")
	b.ReportMetric(idleCPU, "idle_cpu_%")
	b.ReportMetric(loadCPU, "load_cpu_%")
	b.ReportMetric(harnessCPU, "harness_cpu_%")
	b.ReportMetric(float64(goroutines), "goroutines")
	b.ReportMetric(float64(conns), "broker_conns")
	b.ReportMetric(p50, "p50_ms")
	b.ReportMetric(p99, "p99_ms")
	b.ReportMetric(ackP99, "ack_p99_ms")
	b.ReportMetric(float64(want)/loadTook.Seconds(), "events/s")
}

// scaleEvent is the seq-th event published to tenant's topic.
func scaleEvent(tenant string, seq int) *eventspb.Event {
	key := fmt.Sprintf("%s-%d", tenant, seq)
	now := time.Now()
	return &eventspb.Event{
		EventId:        events.EventID(tenant, "order.created", key).String(),
		Tenant:         tenant,
		Name:           "order.created",
		PublishedAt:    timestamppb.New(now),
		Payload:        []byte(fmt.Sprintf(`{"id":"order-%d","n":%d}`, seq, seq)),
		EntityType:     "order",
		DomainEntityId: fmt.Sprintf("order-%d", seq),
		IdempotencyKey: key,
		IngestedAt:     timestamppb.New(now),
	}
}

// scaleReceiver is every integration's endpoint (one path each): it counts
// first receipts per event and integration, and their publish → receipt
// latency.
type scaleReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	pub map[string]time.Time // idempotency key → publish time
	// ack is how long the broker took to acknowledge each publish: a slow
	// broker (kfake shares this process's cores) shows here, not only in
	// the worker's figures.
	ack  map[string]time.Duration
	seen map[[2]string]bool // (key, path) received
	lat  []scaleSample      // since the last resetLatencies
}

// scaleSample is one first receipt: when its event was published, how long
// it took, which event (idempotency key) and to which integration (path).
type scaleSample struct {
	published time.Time
	latency   time.Duration
	key, path string
}

func newScaleReceiver(b *testing.B) *scaleReceiver {
	r := &scaleReceiver{pub: map[string]time.Time{}, ack: map[string]time.Duration{}, seen: map[[2]string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		at := time.Now()
		k := [2]string{req.Header.Get("Idempotency-Key"), req.URL.Path}
		r.mu.Lock()
		if p, ok := r.pub[k[0]]; ok && !r.seen[k] {
			r.seen[k] = true
			r.lat = append(r.lat, scaleSample{published: p, latency: at.Sub(p), key: k[0], path: k[1]})
		}
		r.mu.Unlock()
	}))
	b.Cleanup(r.srv.Close)
	return r
}

func (r *scaleReceiver) published(key string, at time.Time) {
	r.mu.Lock()
	r.pub[key] = at
	r.mu.Unlock()
}

func (r *scaleReceiver) acked(key string, at time.Time) {
	r.mu.Lock()
	r.ack[key] = at.Sub(r.pub[key])
	r.mu.Unlock()
}

// ackP99 is the p99 of the broker's acknowledgements of publishes made
// since from, in milliseconds.
func (r *scaleReceiver) ackP99(from time.Time) float64 {
	r.mu.Lock()
	var acks []time.Duration
	for k, d := range r.ack {
		if !r.pub[k].Before(from) {
			acks = append(acks, d)
		}
	}
	r.mu.Unlock()
	if len(acks) == 0 {
		return 0
	}
	slices.Sort(acks)
	return float64(acks[int(0.99*float64(len(acks)-1))].Microseconds()) / 1000
}

func (r *scaleReceiver) deliveries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *scaleReceiver) latencyCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lat)
}

func (r *scaleReceiver) resetLatencies() {
	r.mu.Lock()
	r.lat = nil
	r.mu.Unlock()
}

// samplesCSV lists the samples as "published (ms since from),latency
// (ms),path" lines, for a look at when slow receipts happened.
func (r *scaleReceiver) samplesCSV(from time.Time) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var buf bytes.Buffer
	buf.WriteString("published_ms,latency_ms,ack_ms,path\n")
	for _, s := range r.lat {
		fmt.Fprintf(&buf, "%d,%.3f,%.3f,%s\n", s.published.Sub(from).Milliseconds(), float64(s.latency.Microseconds())/1000,
			float64(r.ack[s.key].Microseconds())/1000, s.path)
	}
	return buf.Bytes()
}

// percentiles returns p50 and p99 of the latencies in milliseconds.
func (r *scaleReceiver) percentiles() (p50, p99 float64) {
	r.mu.Lock()
	lat := make([]time.Duration, len(r.lat))
	for i, s := range r.lat {
		lat[i] = s.latency
	}
	r.mu.Unlock()
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	return pct(0.50), pct(0.99)
}

// scaleWorker is a worker process under measurement.
type scaleWorker struct {
	b    *testing.B
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startScaleWorker starts a worker process with the production defaults
// (only what a deployment must set, plus the loopback allow-list); its
// output goes to a file.
func startScaleWorker(b *testing.B, dbURL string, brokers []string, addr, pprofAddr string) *scaleWorker {
	b.Helper()
	dir := os.Getenv(testenv.BenchLogsEnv)
	if dir == "" || dir == "off" {
		dir = b.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	logPath := filepath.Join(dir, "delivery-scale-worker-"+strings.ReplaceAll(b.Name(), "/", "-")+".log")
	out, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(),
		workerEnv+"=1",
		"DATABASE_URL="+dbURL,
		"SECRETS_KEY="+hex.EncodeToString(testenv.TestKey),
		"KAFKA_BROKERS="+strings.Join(brokers, ","),
		"WEBHOOK_ALLOW_CIDRS=127.0.0.0/8",
		"DELIVERY_ADDR="+addr,
	)
	if pprofAddr != "" {
		cmd.Env = append(cmd.Env, pprofAddrEnv+"="+pprofAddr)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := &scaleWorker{b: b, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); out.Close(); close(w.done) }()
	b.Cleanup(func() {
		if !w.exited() {
			_ = cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

func (w *scaleWorker) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// tail is the end of the worker's log.
func (w *scaleWorker) tail() string {
	data, _ := os.ReadFile(w.log)
	return string(data[max(0, len(data)-4000):])
}

func (w *scaleWorker) proc(name string) []byte {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", w.cmd.Process.Pid, name))
	if err != nil {
		w.b.Fatalf("reading the worker's /proc/%s (the benchmark needs Linux): %v", name, err)
	}
	return data
}

// cpuTicks is the worker's user plus system CPU time in clock ticks.
func (w *scaleWorker) cpuTicks() int64 { return scaleCPUTicks(w.b, w.proc("stat")) }

// scaleSelfCPUTicks is this process's CPU time (brokers, receiver, producer).
func scaleSelfCPUTicks(b *testing.B) int64 {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		b.Fatal(err)
	}
	return scaleCPUTicks(b, stat)
}

// scaleCPUTicks is user plus system time of a /proc/<pid>/stat line.
func scaleCPUTicks(b *testing.B, stat []byte) int64 {
	// The command name (field 2) may hold spaces; fields after it are fixed.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		b.Fatalf("parsing /proc/<pid>/stat: %v", err)
	}
	return utime + stime
}

// status returns a kB field of /proc/<pid>/status (VmRSS, VmHWM).
func (w *scaleWorker) status(field string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(w.proc("status")))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				w.b.Fatalf("parsing %s: %v", field, err)
			}
			return kb
		}
	}
	w.b.Fatalf("no %s in /proc/<pid>/status", field)
	return 0
}

// brokerConns counts the worker's established TCP connections to any of
// ports: its socket inodes (/proc/<pid>/fd) matched against the network
// namespace's connection table, where the brokers' own ends (kfake runs in
// this process) have other inodes.
func (w *scaleWorker) brokerConns(ports map[int]bool) int {
	fdDir := fmt.Sprintf("/proc/%d/fd", w.cmd.Process.Pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		w.b.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if rest, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(rest, "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"net/tcp", "net/tcp6"} {
		sc := bufio.NewScanner(bytes.NewReader(w.proc(table)))
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(sc.Text())
			if len(f) < 10 || f[3] != "01" || !inodes[f[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(f[2], ":")
			if port, err := strconv.ParseInt(hexPort, 16, 32); err == nil && ports[int(port)] {
				n++
			}
		}
	}
	return n
}

// scaleBrokerPorts are the ports of the seed brokers and of every broker the
// cluster advertises.
func scaleBrokerPorts(b *testing.B, adm *kadm.Client, seeds []string) map[int]bool {
	ports := map[int]bool{}
	for _, s := range seeds {
		if _, p, err := net.SplitHostPort(s); err == nil {
			n, _ := strconv.Atoi(p)
			ports[n] = true
		}
	}
	brokers, err := adm.ListBrokers(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, br := range brokers {
		ports[int(br.Port)] = true
	}
	return ports
}

// scaleGoroutines reads go_goroutines from the worker's /metrics.
func scaleGoroutines(b *testing.B, base string) int {
	code, body := testenv.Get(base + "/metrics")
	if code != http.StatusOK {
		b.Fatalf("worker /metrics: %d %s", code, body)
	}
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				b.Fatal(err)
			}
			return int(v)
		}
	}
	b.Fatal("no go_goroutines in the worker's /metrics")
	return 0
}

func scaleGet(b *testing.B, url string) []byte {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		b.Error(err)
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Errorf("fetching a profile: %v", err)
		return nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return data
}

func scaleSave(b *testing.B, dir, name string, data []byte) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		b.Fatal(err)
	}
}
