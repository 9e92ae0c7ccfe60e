package ingest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/services/ingest"
)

func BenchmarkParse500(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"events":[`)
	for j := range 500 {
		if j > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"name":"order.created","payload":` + payload1K(j) + `}`)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ingest.ParseEvents(body, ingest.Limits{MaxEventBytes: 1 << 20, MaxBatch: 500}, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
