package s3sink

// BufferPeak is the most part-buffer memory the factory's sinks held at once.
func (f *Factory) BufferPeak() int64 { return f.buffers.peak.Load() }

// ChunkSize is the unit of part buffers.
const ChunkSize = chunkSize

// FileRowEvents caps the events of one attempt row.
const FileRowEvents = fileRowEvents
