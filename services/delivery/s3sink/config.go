package s3sink

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/eventstream/eventstream/pkg/config"
)

// S3 multipart limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html).
const (
	MinPartSize = 5 << 20 // every part but the last
	MaxPartSize = 5 << 30
	MaxParts    = 10000
)

// Config is the operator-level S3 delivery configuration, shared by every S3
// integration of a worker. The keys, region and bucket come from each
// integration.
type Config struct {
	// MaxFileBytes closes a file once it holds this many bytes; a file never
	// grows past it (one event larger than the limit makes a file of its own).
	MaxFileBytes int64
	// MaxFileAge closes a file this long after its first event, also when no
	// further events arrive.
	MaxFileAge time.Duration
	// PartSize is the multipart chunk. An open file holds up to two parts in
	// memory (one uploading while the next fills) while the worker's part
	// buffers stay within BufferBytes. Files that end smaller than one part
	// are stored with a single PutObject.
	PartSize int64
	// BufferBytes is what the part buffers of all open files of a worker
	// should hold together. Past it, files ship parts at MinPartSize and
	// wait for their previous part's upload before buffering more, so each
	// holds about one minimum part. Lowered to a quarter of GOMEMLIMIT
	// when that is set.
	BufferBytes int64
	// Endpoint overrides the AWS endpoint (MinIO and other S3-compatible
	// stores, the embedded local server), e.g. http://127.0.0.1:9000.
	Endpoint string
	// UsePathStyle addresses buckets as http://host/bucket/key instead of
	// http://bucket.host/key, which most S3-compatible stores need.
	UsePathStyle bool
	// RetryBase and RetryMax bound the exponential backoff (with jitter)
	// between failed uploads; MaxRetries failures in a row stop the integration.
	RetryBase  time.Duration
	RetryMax   time.Duration
	MaxRetries int
	// RequestTimeout bounds each S3 request (one part upload at most).
	RequestTimeout time.Duration
}

// settings lists every S3 variable, one line each with its default and
// meaning (see package config): ConfigFromEnv reads them, DefaultConfig
// applies the defaults.
func (c *Config) settings(s *config.Set) {
	s.String(&c.Endpoint, "S3_ENDPOINT", "", "endpoint override, e.g. http://127.0.0.1:9000 (default: AWS)")
	// S3-compatible stores behind an endpoint override almost always need
	// path-style addressing (virtual-hosted names like bucket.127.0.0.1 do
	// not resolve), so it is the default there.
	s.Bool(&c.UsePathStyle, "S3_FORCE_PATH_STYLE", c.Endpoint != "", "path-style addressing (default: true with S3_ENDPOINT)")
	config.Custom(s, &c.MaxFileBytes, "S3_MAX_FILE_BYTES", "50MiB", "close a file at this size (bytes, or 512KiB, 50MiB, 1GiB)", ParseBytes)
	s.Duration(&c.MaxFileAge, "S3_MAX_FILE_AGE", 5*time.Minute, "close a file this long after its first event")
	config.Custom(s, &c.PartSize, "S3_PART_SIZE", "5MiB", "multipart part size, at least 5MiB", ParseBytes)
	config.Custom(s, &c.BufferBytes, "S3_BUFFER_BYTES", "64MiB", "part buffers of all open files together (at most a quarter of GOMEMLIMIT)", ParseBytes)
	s.Int(&c.MaxRetries, "S3_MAX_RETRIES", 10, "failed uploads in a row before the integration stops")
	s.Duration(&c.RetryBase, "S3_RETRY_BASE", time.Second, "first backoff, doubling with jitter")
	s.Duration(&c.RetryMax, "S3_RETRY_MAX", time.Minute, "backoff cap")
	s.Duration(&c.RequestTimeout, "S3_REQUEST_TIMEOUT", 2*time.Minute, "per-request timeout")
}

// DefaultConfig returns the defaults: 50 MiB or 5 minutes per file, 5 MiB
// parts, backoff from 1 s up to 1 min, 10 retries, 2 min per request.
func DefaultConfig() Config {
	var c Config
	c.settings(config.Defaults())
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.MaxFileBytes <= 0:
		return errors.New("s3: MaxFileBytes must be positive")
	case c.MaxFileAge <= 0:
		return errors.New("s3: MaxFileAge must be positive")
	case c.PartSize < MinPartSize || c.PartSize > MaxPartSize:
		return fmt.Errorf("s3: PartSize %d outside S3's %d..%d bytes", c.PartSize, MinPartSize, int64(MaxPartSize))
	case c.BufferBytes <= 0:
		return errors.New("s3: BufferBytes must be positive")
	case c.MaxFileBytes/c.PartSize+1 > MaxParts:
		return fmt.Errorf("s3: MaxFileBytes %d needs more than %d parts of %d bytes", c.MaxFileBytes, MaxParts, c.PartSize)
	case c.RetryBase <= 0 || c.RetryMax < c.RetryBase:
		return errors.New("s3: RetryBase must be positive and RetryMax at least RetryBase")
	case c.MaxRetries < 0:
		return errors.New("s3: MaxRetries must not be negative")
	case c.RequestTimeout <= 0:
		return errors.New("s3: RequestTimeout must be positive")
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("s3: endpoint %q is not an absolute http(s) URL", c.Endpoint)
		}
	}
	return nil
}

// ConfigFromEnv reads the S3 settings (see settings; the delivery worker
// and the local runner call it) and validates them.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	s := config.FromEnv(getenv)
	c.settings(s)
	if err := s.Err(); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// shortPartSize is the part size while part buffers are over BufferBytes:
// S3's minimum, or what keeps a full file within MaxParts.
func (c Config) shortPartSize() int64 {
	return min(c.PartSize, max(MinPartSize, c.MaxFileBytes/(MaxParts-1)+1))
}

// ParseBytes reads a size: a plain byte count or a number with a KiB, MiB or
// GiB suffix (KB, MB, GB and K, M, G are read as the same powers of two).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffixes []string
		mult     int64
	}{
		{[]string{"GiB", "GB", "G"}, 1 << 30},
		{[]string{"MiB", "MB", "M"}, 1 << 20},
		{[]string{"KiB", "KB", "K"}, 1 << 10},
		{[]string{"B"}, 1},
	} {
		found := false
		for _, suf := range u.suffixes {
			if strings.HasSuffix(s, suf) {
				s, mult, found = strings.TrimSpace(strings.TrimSuffix(s, suf)), u.mult, true
				break
			}
		}
		if found {
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing size: %w", err)
	}
	if n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %d out of range", n)
	}
	return n * mult, nil
}
