package s3local

import (
	"net/http/httptest"
	"testing"
)

// FuzzVerify: any Authorization header is answered with an S3 error code
// (never a panic, never acceptance without the right signature).
func FuzzVerify(f *testing.F) {
	for _, s := range []string{
		"",
		"AWS4-HMAC-SHA256 Credential=AKIA/20240101/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
		"AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
		"AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host, Signature=ab",
		"Bearer x",
	} {
		f.Add(s, "20240101T000000Z")
	}
	h := &authHandler{creds: map[string]string{"AKIA": "secret"}}
	f.Fuzz(func(t *testing.T, auth, date string) {
		r := httptest.NewRequest("PUT", "/bucket/key?partNumber=1", nil)
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", date)
		if code, _ := h.verify(r); code == "" {
			t.Fatalf("accepted Authorization %q", auth)
		}
	})
}
