package s3sink

import (
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eventstream/eventstream/pkg/catalog"
)

// clientCache holds one S3 client per integration, rebuilt when the
// integration changes (a new registration under the same id, or a PATCH of
// its keys). Every client shares one HTTP connection pool.
type clientCache struct {
	cfg  Config
	http aws.HTTPClient

	mu sync.Mutex
	m  map[string]cachedClient // tenant/id
}

type cachedClient struct {
	generation int64
	updatedAt  time.Time
	target     catalog.S3Target
	client     *s3.Client
}

func newClientCache(cfg Config) *clientCache {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		// Ten integrations writing to one endpoint each keep a connection
		// busy; the default of two idle connections per host would make
		// them reconnect for every part.
		t.MaxIdleConnsPerHost = 64
		t.MaxIdleConns = 256
	}).Freeze() // frozen: the SDK would otherwise copy it, and its pool, per client
	return &clientCache{cfg: cfg, http: hc, m: map[string]cachedClient{}}
}

// get returns the client for in's current keys, region and endpoint.
func (c *clientCache) get(in *catalog.Integration) *s3.Client {
	key := in.Tenant + "/" + in.ID
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok && e.generation == in.Generation && e.updatedAt.Equal(in.UpdatedAt) && e.target == *in.S3 {
		return e.client
	}
	t := *in.S3
	opts := s3.Options{
		Region:      t.Region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(t.AccessKeyID, t.SecretAccessKey, "")),
		HTTPClient:  c.http,
		// The sink retries itself, with backoff, logs and attempt records
		// per failure; SDK-level retries would hide failures from all three.
		Retryer:      aws.NopRetryer{},
		UsePathStyle: c.cfg.UsePathStyle,
		// Integrity is covered by SigV4's payload hash (plain HTTP) or TLS;
		// the SDK's extra CRC checksums are not understood by every
		// S3-compatible store.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if c.cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(c.cfg.Endpoint)
	}
	client := s3.New(opts)
	c.m[key] = cachedClient{generation: in.Generation, updatedAt: in.UpdatedAt, target: t, client: client}
	return client
}
