package s3sink

import (
	"context"
	"errors"
	"fmt"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// failure is one failed S3 request as logs and attempt rows show it.
type failure struct {
	code    string // S3 error code (InvalidAccessKeyId, NoSuchBucket, ...) or "" without a response
	message string // S3's message, or the transport error
	status  int    // HTTP status, 0 without a response
}

func describe(err error, timeout bool) failure {
	var f failure
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) && respErr.Response != nil {
		f.status = respErr.HTTPStatusCode()
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		f.code, f.message = apiErr.ErrorCode(), apiErr.ErrorMessage()
		if f.message == "" {
			f.message = apiErr.Error()
		}
		return f
	}
	var netErr net.Error
	switch {
	case timeout || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		f.code, f.message = "RequestTimeout", "no response before the request timeout"
	default:
		f.message = err.Error()
	}
	return f
}

// reason renders f for logs: "<code>: <message> (HTTP status code <n>)".
func (f failure) reason() string {
	s := f.message
	if f.code != "" {
		s = f.code + ": " + s
	}
	if f.status != 0 {
		s += fmt.Sprintf(" (HTTP status code %d)", f.status)
	}
	return s
}

// permanent reports failures retrying cannot fix for the same file.
func (f failure) uploadLost() bool { return f.code == "NoSuchUpload" }
