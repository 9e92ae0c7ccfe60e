package events

// Filter is an integration's subscription: an event passes when its name is in
// EventNames OR its entity type is in EntityTypes. An empty filter passes everything.
// Build it once per integration with NewFilter; Match is allocation-free.
type Filter struct {
	names    map[string]struct{}
	entities map[string]struct{}
}

// NewFilter builds a Filter. Nil or empty slices mean "no condition of that kind".
func NewFilter(eventNames, entityTypes []string) Filter {
	f := Filter{}
	if len(eventNames) > 0 {
		f.names = make(map[string]struct{}, len(eventNames))
		for _, n := range eventNames {
			f.names[n] = struct{}{}
		}
	}
	if len(entityTypes) > 0 {
		f.entities = make(map[string]struct{}, len(entityTypes))
		for _, t := range entityTypes {
			f.entities[t] = struct{}{}
		}
	}
	return f
}

// Match reports whether an event with this name and entity type passes the filter.
func (f Filter) Match(name, entityType string) bool {
	if f.names == nil && f.entities == nil {
		return true
	}
	if _, ok := f.names[name]; ok {
		return true
	}
	_, ok := f.entities[entityType]
	return ok
}
