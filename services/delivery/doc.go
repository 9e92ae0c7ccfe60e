// Package delivery runs the delivery workers: for each running integration of
// the tenants in its pool, one Kafka consumer group feeding a Sink (webhook or
// S3), committing offsets only for records whose outcome is final.
package delivery
