// Package delivery runs the delivery workers: for each running integration of
// the tenants in its pool, one Kafka consumer group feeding a Sink (webhook or
// S3), committing offsets only for records whose outcome is final.
//
// # Pools
//
// A worker serves a pool (Config.Pool, Config.PoolTenants). A pool with an
// explicit tenant list records its claim in the catalog when it starts
// (delivery_pool_claims; a tenant claimed by two pools is refused); the "*"
// pool serves every tenant no pool claimed. Replicas of one pool share each
// integration's partitions through the consumer group.
//
// # Supervisor
//
// Service.Run LISTENs on the catalog's eventstream_integrations channel and,
// on every notification and every StopPropagation/4, reads the state of every
// integration of the pool (one query, no secrets): it starts consumers for
// running integrations, stops those of stopped, deleted or changed ones, and
// confirms the rest. Every ResyncInterval it also reloads every running
// integration's configuration. A janitor deletes completed temporary
// integrations after TemporaryRetention and consumer groups whose
// registration is gone.
//
// # Stop bound
//
// After _stop returns, no new attempt starts later than StopPropagation: the
// NOTIFY stops the consumer within milliseconds, and independently an attempt
// only starts while the last catalog read that saw the integration running
// began less than StopPropagation ago (so a lost notification or an
// unreachable catalog pauses delivery rather than overrunning a stop).
// Attempts already in flight finish and are recorded.
//
// # Consumer
//
// One franz-go group consumer per integration run, group
// "eventstream.<tenant>.<id>.<generation>[.<epoch>]", with autocommit off and
// BlockRebalanceOnPoll. Polled records go to a bounded buffer per partition
// (fetching pauses when it is full) and a feeder per partition hands them to
// the sink in offset order. Records the integration does not want (filters,
// outside its time window) are final at once. A committer commits per
// partition the offset below the oldest record without a final outcome; on
// revocation the partition is drained (bounded), committed and forgotten, so
// nothing is committed for it afterwards; a lost partition commits nothing.
//
// A group without commits starts at the integration's start: offsets_reset_at
// after a long stop, else starts_at, else the registration time. A group that
// had committed (offsets_committed_epoch) but whose offsets the broker
// expired resumes each partition from its offset checkpoint: the worker
// copies the offsets it committed to the catalog (delivery_offset_checkpoints,
// every integration's in one statement every OffsetCheckpointInterval and at
// drain, never per commit), and a partition starts at the copy of this
// generation and epoch, or at the log start when retention deleted records
// below it (logged). A copy lags the commits by at most one interval: what
// was delivered after it comes again, nothing is skipped however far the
// consumer lagged. A partition without a copy (never committed, or a group
// older than the checkpoints) resumes by time: from when the integration
// stopped (never stopped: from its newest attempt row, or from the start of
// the attempt retention window when it has none), which skips records
// ingested before then but not yet delivered. A failed read (checkpoints or
// newest attempt) fails the join, which franz-go retries, rather than
// replaying from the registration. A start more
// than OffsetRetention after the stop bumps the group epoch (a fresh group)
// and starts from the start time, logging it. Temporary integrations deliver
// records stamped within [starts_at, ends_at], each filtered by its own
// timestamp (an in-window record may follow a later-stamped one), and stop
// themselves (integration_completed) once the group's commits pass, on every
// partition, the first record stamped after ends_at plus ClockSkew.
//
// # Durability of outcomes
//
// A record's final outcome is made Done only once its attempt row is durable
// (AttemptWriter.WriteThen): the offset commit never runs ahead of the
// observability record, so a worker killed at any moment loses no attempt
// row of a committed event (at worst, an event is delivered again and
// recorded again). A record no integration can decode is recorded as a
// FAILURE attempt (eventstream.delivery.undecodable_records) and skipped.
//
// # Shared resources
//
// One tenant cannot take what the worker shares. Webhook bodies in flight
// count against the integration's MaxInFlightBytes and the worker-wide
// MemoryBudget; an integration holding nothing is always admitted with one
// event, so a tenant with slow endpoints slows itself, never another. The
// attempt writer splits a batch Postgres refuses for its content to single
// out the row, stores it in a safe form or drops and reports it, and goes on;
// every outside text passes through catalog.SafeText. The supervisor reads
// integration states over a connection pool of its own, so a busy catalog
// pool applies backpressure to delivery without closing the stop gate.
// Setting an integration stopped (an interrupt, a completion) is retried a
// bounded number of times; a reason Postgres refuses is replaced by a fixed
// one; a stop the catalog keeps refusing is counted
// (eventstream.delivery.stops_unrecorded) and logged, and the integration
// stays paused on the worker (no consumer) while the supervisor retries the
// write, until it is recorded or the integration's state changes.
//
// # Webhook sink
//
// Records wait in a bounded window (MaxInFlight records, MaxInFlightBytes of
// bodies) until their outcome is final; those whose attempt row is still on
// its way to the catalog are bounded by the attempt writer's queue instead,
// and are committed only once the row is stored. Workers, started on demand
// up to the limit and gone after a few idle seconds (an integration at a few
// events a second holds one goroutine, not MaxConcurrency),
// attempt them under an adaptive (AIMD) concurrency limit that starts at
// InitialConcurrency, grows while 2xx answers come fast (doubling per round
// trip until the first congestion), halves on 429, 5xx, timeouts and
// connection errors, and pauses for Retry-After. Requests go over one shared transport with keep-alive
// connections (MaxIdleConnsPerHost is at least MaxConcurrency). A refused
// address (SSRF guard, the service's own hosts) stops the integration at
// once. 2xx is
// delivered; 400 stores a rejected event (at the limit the integration stops,
// nothing is dropped); anything else is retried with exponential backoff and
// jitter (pkg/backoff), logging retry_triggered, until MaxRetries retries failed: then
// the integration stops and the record stays uncommitted, so a _start resumes
// with it. Every webhook attempt is one publish_attempts row, written in
// batches; an S3 file attempt is one row per up to 2,000 of its events, with
// the events' ids and names as arrays (see package s3sink and catalog).
package delivery
