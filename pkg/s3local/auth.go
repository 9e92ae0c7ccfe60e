package s3local

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// authHandler rejects requests that are not signed with a known key pair
// (AWS Signature Version 4, Authorization header form), answering the way S3
// does: 403 with an XML error body.
type authHandler struct {
	creds map[string]string
	next  http.Handler
}

// invalidCredentials is the message a bad key or secret gets; it is the text
// the reference product shows for this failure.
const invalidCredentials = "Invalid access credentials."

func (h *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if code, msg := h.verify(r); code != "" {
		writeError(w, http.StatusForbidden, code, msg, r.URL.Path)
		return
	}
	h.next.ServeHTTP(w, r)
}

// verify returns an S3 error code and message, or "" when the signature holds.
func (h *authHandler) verify(r *http.Request) (code, msg string) {
	const algo = "AWS4-HMAC-SHA256"
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, algo+" ") {
		return "AccessDenied", "Access Denied."
	}
	var credential, signedHeaders, signature string
	for _, f := range strings.Split(strings.TrimPrefix(auth, algo+" "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signedHeaders = v
		case "Signature":
			signature = v
		}
	}
	// Credential = AKID/date/region/service/aws4_request
	scopeParts := strings.SplitN(credential, "/", 2)
	if len(scopeParts) != 2 || signedHeaders == "" || signature == "" {
		return "AuthorizationHeaderMalformed", "The authorization header is malformed."
	}
	secret, ok := h.creds[scopeParts[0]]
	if !ok {
		return "InvalidAccessKeyId", invalidCredentials
	}
	scope := scopeParts[1]
	fields := strings.Split(scope, "/")
	if len(fields) != 4 || fields[3] != "aws4_request" {
		return "AuthorizationHeaderMalformed", "The authorization header is malformed."
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return "AccessDenied", "Missing X-Amz-Date."
	}
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	if payloadHash == "" {
		payloadHash = "UNSIGNED-PAYLOAD"
	}

	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	canon.WriteString(r.URL.EscapedPath() + "\n")
	canon.WriteString(canonicalQuery(r.URL.Query()) + "\n")
	for _, name := range strings.Split(signedHeaders, ";") {
		var vals []string
		switch name {
		case "host":
			vals = []string{r.Host}
		case "content-length":
			vals = r.Header.Values("Content-Length")
			if len(vals) == 0 {
				vals = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		default:
			vals = r.Header.Values(name)
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		canon.WriteString(name + ":" + strings.Join(vals, ",") + "\n")
	}
	canon.WriteString("\n" + signedHeaders + "\n" + payloadHash)

	sum := sha256.Sum256([]byte(canon.String()))
	toSign := algo + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + secret)
	for _, f := range fields {
		key = hmacSum(key, f)
	}
	want := hex.EncodeToString(hmacSum(key, toSign))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return "SignatureDoesNotMatch", invalidCredentials
	}
	return "", ""
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalQuery encodes q as SigV4 wants: keys sorted, RFC 3986 escaping.
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(awsEscape(k) + "=" + awsEscape(v))
		}
	}
	return b.String()
}

func awsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func writeError(w http.ResponseWriter, status int, code, msg, resource string) {
	body, _ := xml.Marshal(struct {
		XMLName  xml.Name `xml:"Error"`
		Code     string   `xml:"Code"`
		Message  string   `xml:"Message"`
		Resource string   `xml:"Resource"`
	}{Code: code, Message: msg, Resource: resource})
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
}
