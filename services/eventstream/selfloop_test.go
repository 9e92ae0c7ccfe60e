package eventstream_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// TestSelfLoopThroughTheStack is issue 8's trial against `make run`: a
// webhook whose callback is the stack's own ingest API, with the tenant's
// token as api_key, used to publish every delivered event again without end.
// The base URL is refused at registration; another name for it gets past
// that textual check, and then the delivery is refused (by the sender, or by
// the ingest API seeing the delivery mark), so the topic keeps the one event.
func TestSelfLoopThroughTheStack(t *testing.T) {
	e := newStackEnv(t)
	s := startStack(t, e)
	api := configURL(s)
	hook := func(id, url string) map[string]any {
		return map[string]any{"id": id, "integration_type": "permanent",
			"callback_parameters": map[string]any{"callback_url": url, "api_key": s.Token}}
	}
	var errBody map[string]string
	if code := call(t, "POST", api, s.Token, hook("loop-direct", s.BaseURL+"/v1/events"), &errBody); code != 400 ||
		!strings.Contains(errBody["message"], "callback_parameters.callback_url") || errBody["request_id"] == "" {
		t.Fatalf("registering the stack's own base URL: %d %v", code, errBody)
	}
	port := e.addr[strings.LastIndex(e.addr, ":")+1:]
	if code := call(t, "POST", api, s.Token, hook("loop-alias", "http://localhost:"+port+"/v1/events"), nil); code != 200 {
		t.Fatalf("registering localhost:%s = %d", port, code)
	}
	ids := publish(t, s.BaseURL, s.Token, "loop-1")

	// Wait for the delivery's outcome: a rejected event (the ingest API's
	// 400) or the sender refusing its own host, which stops the integration.
	var rejected struct {
		RejectedEvents []struct {
			ID string `json:"id"`
		} `json:"rejected_events"`
	}
	var logs struct {
		Entries []struct {
			Action string `json:"action"`
			Reason string `json:"reason"`
		} `json:"entries"`
	}
	testenv.WaitFor(t, 60*time.Second, "the looping delivery to be refused", func() bool {
		if code := call(t, "GET", api+"/loop-alias/rejected_events", s.Token, nil, &rejected); code != 200 {
			t.Fatalf("rejected_events = %d", code)
		}
		if len(rejected.RejectedEvents) > 0 {
			return true
		}
		if code := call(t, "GET", api+"/loop-alias/logs", s.Token, nil, &logs); code != 200 {
			t.Fatalf("logs = %d", code)
		}
		for _, l := range logs.Entries {
			if l.Action == "integration_stopped" && strings.Contains(l.Reason, "address not allowed") {
				return true
			}
		}
		return false
	})
	if len(rejected.RejectedEvents) > 0 && rejected.RejectedEvents[0].ID != ids[0] {
		t.Fatalf("rejected %+v, want event %s", rejected.RejectedEvents, ids[0])
	}
	// The refusal came before anything was produced again.
	if n := topicSize(t, e, "demo"); n != 1 {
		t.Fatalf("the demo topic holds %d records after one publish, want 1 (the delivery was re-published)", n)
	}
}

// topicSize sums the end offsets of the tenant's topic.
func topicSize(t *testing.T, e *stackEnv, tenant string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:" + strconv.Itoa(e.kafkaPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, events.TopicName(tenant))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}
