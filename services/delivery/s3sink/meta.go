package s3sink

import (
	"encoding/binary"

	"github.com/google/uuid"

	"github.com/eventstream/eventstream/pkg/events/eventspb"
)

// metaLog keeps, for every event of an open file, what its attempt rows need
// (event id, name, domain entity id and type), packed into one byte slice.
// A 50 MiB file of small events holds a quarter of a million of them; as
// protobuf messages they would take more memory than the file itself.
type metaLog struct {
	buf   []byte
	names strTable // event names and entity types: a few dozen distinct values
}

// How an event id is stored.
const (
	idUUID   byte = iota // 16 bytes
	idString             // length-prefixed, for ids that are not canonical UUIDs
)

type eventMeta struct {
	EventID, Name, DomainEntityID, DomainEntityType string
}

func (m *metaLog) add(ev *eventspb.Event) {
	// Event ids are UUIDs: 16 bytes instead of 36 characters.
	if id, err := uuid.Parse(ev.GetEventId()); err == nil && isCanonical(ev.GetEventId()) {
		m.buf = append(m.buf, idUUID)
		m.buf = append(m.buf, id[:]...)
	} else {
		m.buf = append(m.buf, idString)
		m.buf = appendString(m.buf, ev.GetEventId())
	}
	m.buf = binary.AppendUvarint(m.buf, uint64(m.names.index(ev.GetName())))
	m.buf = appendString(m.buf, ev.GetDomainEntityId())
	m.buf = binary.AppendUvarint(m.buf, uint64(m.names.index(ev.GetEntityType())))
}

// mark is a position to read from: each part remembers where its events start.
func (m *metaLog) mark() int { return len(m.buf) }

// since returns a read-only view of the events from position pos on. A view
// stays valid, and may be read by another goroutine, while the owner keeps
// adding: additions only write past the view's end or move to a new array.
func (m *metaLog) since(pos int) metaView {
	return metaView{buf: m.buf[pos:len(m.buf):len(m.buf)], names: m.names.values[:len(m.names.values):len(m.names.values)]}
}

type metaView struct {
	buf   []byte
	names []string
}

// each calls fn for every event of the view, in order.
func (v metaView) each(fn func(eventMeta)) {
	b := v.buf
	for len(b) > 0 {
		var e eventMeta
		if b[0] == idUUID {
			e.EventID, b = uuid.UUID(b[1:17]).String(), b[17:]
		} else {
			e.EventID, b = readString(b[1:])
		}
		var i uint64
		i, b = readUvarint(b)
		e.Name = v.names[i]
		e.DomainEntityID, b = readString(b)
		i, b = readUvarint(b)
		e.DomainEntityType = v.names[i]
		fn(e)
	}
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

// isCanonical reports whether a parsed UUID string is in the form
// uuid.String gives back (36 characters, lowercase), so storing it as 16
// bytes loses nothing.
func isCanonical(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		if 'A' <= s[i] && s[i] <= 'F' {
			return false
		}
	}
	return true
}
