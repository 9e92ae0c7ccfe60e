package s3sink

import (
	"encoding/binary"

	"github.com/eventstream/eventstream/pkg/events/eventspb"
)

// metaLog keeps, for every event of an open file, what its attempt rows need
// (event id, name, domain entity id and type), packed into one byte slice.
// A 50 MiB file of small events holds a quarter of a million of them; as
// protobuf messages they would take more memory than the file itself.
type metaLog struct {
	buf   []byte
	n     int
	names strTable // event names and entity types: a few dozen distinct values
}

type eventMeta struct {
	EventID, Name, DomainEntityID, DomainEntityType string
}

func (m *metaLog) add(ev *eventspb.Event) {
	m.buf = appendString(m.buf, ev.GetEventId())
	m.buf = binary.AppendUvarint(m.buf, uint64(m.names.index(ev.GetName())))
	m.buf = appendString(m.buf, ev.GetDomainEntityId())
	m.buf = binary.AppendUvarint(m.buf, uint64(m.names.index(ev.GetEntityType())))
	m.n++
}

// mark is a position to read from: each part remembers where its events start.
func (m *metaLog) mark() int { return len(m.buf) }

// each calls fn for every event from position pos on, in order.
func (m *metaLog) each(pos int, fn func(eventMeta)) {
	b := m.buf[pos:]
	for len(b) > 0 {
		var e eventMeta
		e.EventID, b = readString(b)
		var i uint64
		i, b = readUvarint(b)
		e.Name = m.names.values[i]
		e.DomainEntityID, b = readString(b)
		i, b = readUvarint(b)
		e.DomainEntityType = m.names.values[i]
		fn(e)
	}
}

func (m *metaLog) reset() {
	m.buf = m.buf[:0]
	m.n = 0
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readUvarint(b []byte) (uint64, []byte) {
	v, n := binary.Uvarint(b)
	return v, b[n:]
}

func readString(b []byte) (string, []byte) {
	n, b := readUvarint(b)
	return string(b[:n]), b[n:]
}

// strTable interns strings as small indexes.
type strTable struct {
	ids    map[string]int
	values []string
}

func (t *strTable) index(s string) int {
	if i, ok := t.ids[s]; ok {
		return i
	}
	if t.ids == nil {
		t.ids = map[string]int{}
	}
	t.ids[s] = len(t.values)
	t.values = append(t.values, s)
	return len(t.values) - 1
}
