// Package chaos is the fault-injection suite of Event Stream (`make chaos`,
// and a short slice in `go test`). It runs the real system on loopback, with
// every dependency under its control, publishes a known set of events through
// the ingest API and, on a seeded schedule, breaks things while they flow:
//
//   - the services are the built binaries (cmd/ingest, cmd/configapi and
//     cmd/delivery, given or built with go build), each its own process
//     with its log in the run's directory, waited for until ready (the
//     APIs' /readyz) and stopped with SIGTERM at the end; a service that
//     exits on its own is a finding;
//   - delivery workers are two or more replicas of one pool, so
//     partitions rebalance, killed with SIGKILL or stopped with SIGTERM and
//     started again;
//   - the Kafka broker is franz-go's kfake in this process: ControlKey
//     answers Produce, Fetch or OffsetCommit with errors, and a restart
//     closes it and opens its DataDir again on the same address;
//   - Postgres (pkg/pgserver) is paused with SIGSTOP/SIGCONT or restarted;
//   - the S3 endpoint (pkg/s3local) sits behind a proxy that answers 500/503
//     or performs CompleteMultipartUpload and then drops the reply;
//   - webhook receivers answer 5xx, 429 with Retry-After, hostile bodies
//     (NUL, invalid UTF-8, a character cut at 1 KiB, a huge body), slowly,
//     or reset the connection.
//
// After the faults stop it waits (on conditions, with a deadline) for the
// system to recover and checks, per integration, that every accepted event
// passing its filter was delivered at least once, that every delivery has a
// SUCCESS row in publish_attempts, and that nothing crossed tenants. Report
// prints the figures; a run with any loss fails.
//
// The parts read in this order: Schedule (what happens when, from a seed),
// Fault (one kind of breakage, Inject then Heal), Ledger (what was accepted
// and what each endpoint saw), process (one service binary), Run (all of
// it, start to verdict).
package chaos
