package eventstream

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgressLine: on a terminal one line is rewritten in place (carriage
// return, erase to the end) and ends with a newline; elsewhere each second is
// its own line.
func TestProgressLine(t *testing.T) {
	for _, tty := range []bool{true, false} {
		g := &loadgen{stats: newLoadStats(), tracker: newDeliveryTracker()}
		g.stats.sent.Add(10)
		g.stats.accepted.Add(8)
		g.stats.failed.Add(2)
		g.stats.request(202, timing{d: 3 * time.Millisecond})
		g.stats.request(503, timing{})
		g.stats.request(0, timing{})
		g.tracker.published("e1", time.Now().Add(-20*time.Millisecond))
		g.tracker.arrived("e1", time.Now())
		var out bytes.Buffer
		p := &progress{w: &out, tty: tty, g: g}
		start := time.Now()
		last, acc := start, int64(0)
		p.line(start, &last, &acc)
		p.line(start, &last, &acc)
		got := out.String()
		for _, want := range []string{"sent 10 accepted 8 failed 2", "errors net×1 503×1", "publish p50 3.0 ms", "delivered 1 p50 2"} {
			if !strings.Contains(got, want) {
				t.Errorf("tty=%v: %q lacks %q", tty, got, want)
			}
		}
		if tty && (strings.Count(got, "\r\x1b[K") != 2 || strings.Contains(got, "\n")) {
			t.Errorf("terminal output %q: want two rewrites of one line", got)
		}
		if !tty && (strings.Contains(got, "\r") || strings.Count(got, "\n") != 2) {
			t.Errorf("plain output %q: want two lines", got)
		}
	}
}

func TestDeliveryTrackerMatchesBothOrders(t *testing.T) {
	tr := newDeliveryTracker()
	t0 := time.Now()
	tr.published("a", t0)
	tr.arrived("a", t0.Add(5*time.Millisecond)) // after its 202
	tr.arrived("b", t0.Add(7*time.Millisecond)) // before its 202 was read
	tr.published("b", t0)
	tr.arrived("a", t0.Add(9*time.Millisecond)) // again
	tr.ignore("probe")
	tr.arrived("probe", t0)
	tr.arrived("stranger", t0)
	s := tr.summary()
	if s.Delivered != 2 || s.Duplicates != 1 || s.Unmatched != 1 || s.Latency.P50 != 5 || s.Latency.Max != 7 {
		t.Errorf("summary %+v", s)
	}
}
