package s3sink

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// ObjectKey names a file: {key_prefix}/{tenant}/{epoch_millis}-data-{random}.export.
// Slashes around the prefix are dropped and an empty prefix adds none, so
// keys never contain "//" from the join nor start with "/" (a leading slash
// makes an empty-named folder in S3 consoles, and gofakes3 cannot list such
// keys). The random part keeps two files
// started in the same millisecond (two integrations sharing a bucket and
// prefix, two workers of one integration) apart.
func ObjectKey(prefix, tenant string, started time.Time, random string) string {
	prefix = strings.Trim(prefix, "/")
	var b strings.Builder
	b.Grow(len(prefix) + len(tenant) + 40)
	if prefix != "" {
		b.WriteString(prefix)
		b.WriteByte('/')
	}
	b.WriteString(tenant)
	b.WriteByte('/')
	b.WriteString(strconv.FormatInt(started.UnixMilli(), 10))
	b.WriteString("-data-")
	b.WriteString(random)
	b.WriteString(".export")
	return b.String()
}

// randomSuffix returns 10 lowercase hex characters (40 bits).
func randomSuffix() string {
	var raw [5]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(raw[:])
}
