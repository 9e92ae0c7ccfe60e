package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
)

// Signature computes the Standard Webhooks signature header value
// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" (timestamp in Unix
// seconds).
//
// The key is derived from secret the way Standard Webhooks libraries do: a
// secret of the form "whsec_<base64>" is the base64-decoded bytes after the
// prefix. Any other secret (or a whsec_ value that is not valid base64) is
// used as its raw bytes, so a tenant may register a plain passphrase and
// verify with HMAC over the same bytes.
func Signature(secret, id string, timestamp int64, body []byte) string {
	return signature(SigningKey(secret), id, timestamp, body)
}

// signature is Signature with the key already derived (SigningKey).
func signature(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SigningKey returns the HMAC key for secret (see Signature).
func SigningKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil && len(k) > 0 {
			return k
		}
	}
	return []byte(secret)
}
