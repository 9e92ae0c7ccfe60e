package s3sink

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
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
	// memory (one uploading while the next fills). Files that end smaller
	// than one part are stored with a single PutObject.
	PartSize int64
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

// DefaultConfig returns the defaults: 50 MiB or 5 minutes per file, 5 MiB
// parts, backoff from 1 s up to 1 min, 10 retries, 2 min per request.
func DefaultConfig() Config {
	return Config{
		MaxFileBytes:   50 << 20,
		MaxFileAge:     5 * time.Minute,
		PartSize:       MinPartSize,
		RetryBase:      time.Second,
		RetryMax:       time.Minute,
		MaxRetries:     10,
		RequestTimeout: 2 * time.Minute,
	}
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

// ConfigFromEnv reads the S3 settings (the delivery service's and the local
// runner's ConfigFromEnv call it) over DefaultConfig:
//
//	S3_ENDPOINT          endpoint override, e.g. http://127.0.0.1:9000 (default: AWS)
//	S3_FORCE_PATH_STYLE  path-style addressing (default: true with S3_ENDPOINT, false without)
//	S3_MAX_FILE_BYTES    close a file at this size: bytes or 512KiB / 50MiB / 1GiB (default 50MiB)
//	S3_MAX_FILE_AGE      close a file this long after it started, Go duration (default 5m)
//	S3_PART_SIZE         multipart part size, at least 5MiB (default 8MiB)
//	S3_MAX_RETRIES       failed uploads in a row before the integration stops (default 10)
//	S3_RETRY_BASE        first backoff, doubling with jitter (default 1s)
//	S3_RETRY_MAX         backoff cap (default 1m)
//	S3_REQUEST_TIMEOUT   per-request timeout (default 2m)
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	c.Endpoint = strings.TrimSpace(getenv("S3_ENDPOINT"))
	var err error
	set := func(name string, parse func(string) error) {
		if v := strings.TrimSpace(getenv(name)); v != "" && err == nil {
			if perr := parse(v); perr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, perr)
			}
		}
	}
	// S3-compatible stores behind an endpoint override almost always need
	// path-style addressing (virtual-hosted names like bucket.127.0.0.1
	// do not resolve), so it is the default there.
	c.UsePathStyle = c.Endpoint != ""
	set("S3_FORCE_PATH_STYLE", func(v string) (e error) { c.UsePathStyle, e = strconv.ParseBool(v); return })
	set("S3_MAX_FILE_BYTES", func(v string) (e error) { c.MaxFileBytes, e = ParseBytes(v); return })
	set("S3_MAX_FILE_AGE", func(v string) (e error) { c.MaxFileAge, e = time.ParseDuration(v); return })
	set("S3_PART_SIZE", func(v string) (e error) { c.PartSize, e = ParseBytes(v); return })
	set("S3_MAX_RETRIES", func(v string) (e error) { c.MaxRetries, e = strconv.Atoi(v); return })
	set("S3_RETRY_BASE", func(v string) (e error) { c.RetryBase, e = time.ParseDuration(v); return })
	set("S3_RETRY_MAX", func(v string) (e error) { c.RetryMax, e = time.ParseDuration(v); return })
	set("S3_REQUEST_TIMEOUT", func(v string) (e error) { c.RequestTimeout, e = time.ParseDuration(v); return })
	if err != nil {
		return Config{}, err
	}
	return c, c.Validate()
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
