package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// TestKcatReadsTheEventLog checks the log with librdkafka (kcat), a client
// independent of franz-go: it lists the tenant topic and consumes every
// record, whose key, protobuf value, trace header and timestamp must be what
// ingest acknowledged.
func TestKcatReadsTheEventLog(t *testing.T) {
	kcat := testenv.Kcat(t)
	h := newHarness(t, testenv.KafkaBrokers(t), nil)
	tenant := h.newTenant()
	topic := events.TopicName(tenant)
	tok := token(t, tenant)

	want := map[string]string{} // domain entity id -> event id
	var batch []string
	for i, name := range events.Names()[:10] {
		id := fmt.Sprintf("kc-%d", i)
		batch = append(batch, `{"name":"`+name+`","payload":{"id":"`+id+`","i":`+strconv.Itoa(i)+`}}`)
		want[id] = events.EventID(tenant, name, id).String()
	}
	r := h.post(tok, []byte(`{"events":[`+strings.Join(batch, ",")+`]}`),
		"traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if r.status != 202 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	broker := h.brokers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Metadata: the topic is listed with its 3 partitions.
	out, err := exec.CommandContext(ctx, kcat, "-b", broker, "-L", "-J", "-t", topic).Output()
	if err != nil {
		t.Fatalf("kcat -L: %v: %s", err, stderrOf(err))
	}
	var md struct {
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []any  `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("kcat -L -J output: %v: %s", err, out)
	}
	if len(md.Topics) != 1 || md.Topics[0].Topic != topic || len(md.Topics[0].Partitions) != 3 {
		t.Fatalf("kcat lists %s", out)
	}

	// Consume everything: key length and key as text, the value length-prefixed
	// (binary %R) so protobuf bytes pass through untouched, headers, timestamp.
	out, err = exec.CommandContext(ctx, kcat, "-b", broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
		"-f", "%K\t%k\t%R%s\t%h\t%T\n").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v: %s", err, stderrOf(err))
	}
	rd := bufio.NewReader(bytes.NewReader(out))
	got := 0
	for {
		klen, err := rd.ReadString('\t')
		if errors.Is(err, io.EOF) {
			break
		}
		n, err := strconv.Atoi(strings.TrimSuffix(klen, "\t"))
		if err != nil {
			t.Fatalf("kcat output: key length %q", klen)
		}
		key := make([]byte, n+1)
		var vlen int32
		if _, err := io.ReadFull(rd, key); err != nil {
			t.Fatal(err)
		}
		if err := binary.Read(rd, binary.BigEndian, &vlen); err != nil {
			t.Fatal(err)
		}
		value := make([]byte, vlen)
		if _, err := io.ReadFull(rd, value); err != nil {
			t.Fatal(err)
		}
		rest, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Split(strings.TrimSuffix(strings.TrimPrefix(rest, "\t"), "\n"), "\t")
		if len(fields) != 2 {
			t.Fatalf("kcat output tail %q", rest)
		}
		var ev eventspb.Event
		if err := proto.Unmarshal(value, &ev); err != nil {
			t.Fatalf("value kcat read is not an Event: %v", err)
		}
		k := string(key[:n])
		if want[k] == "" || ev.GetEventId() != want[k] || ev.GetDomainEntityId() != k || ev.GetTenant() != tenant {
			t.Fatalf("kcat read key %q with event %v", k, &ev)
		}
		if !strings.Contains(fields[0], "traceparent=00-"+traceID) {
			t.Fatalf("kcat sees headers %q, want a traceparent of trace %s", fields[0], traceID)
		}
		if ms, _ := strconv.ParseInt(fields[1], 10, 64); ms != ev.GetIngestedAt().AsTime().UnixMilli() {
			t.Fatalf("record timestamp %s, want ingested_at %v", fields[1], ev.GetIngestedAt().AsTime())
		}
		delete(want, k)
		got++
	}
	if len(want) != 0 {
		t.Fatalf("kcat read %d records; missing %v", got, want)
	}
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
