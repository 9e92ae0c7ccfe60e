package s3sink_test

import (
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/services/delivery/s3sink"
)

func TestConfigFromEnv(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		check   func(s3sink.Config) bool
		wantErr string
	}{
		{"defaults", nil, func(c s3sink.Config) bool {
			return c.MaxFileBytes == 50<<20 && c.MaxFileAge == 5*time.Minute && c.PartSize == 5<<20 &&
				c.MaxRetries == 10 && c.Endpoint == "" && !c.UsePathStyle
		}, ""},
		{"endpoint implies path style", map[string]string{"S3_ENDPOINT": "http://127.0.0.1:9000"}, func(c s3sink.Config) bool {
			return c.Endpoint == "http://127.0.0.1:9000" && c.UsePathStyle
		}, ""},
		{"path style off explicitly", map[string]string{"S3_ENDPOINT": "https://s3.example.com", "S3_FORCE_PATH_STYLE": "false"}, func(c s3sink.Config) bool {
			return !c.UsePathStyle
		}, ""},
		{"limits", map[string]string{"S3_MAX_FILE_BYTES": "10MiB", "S3_MAX_FILE_AGE": "30s", "S3_PART_SIZE": "5242880", "S3_MAX_RETRIES": "3"}, func(c s3sink.Config) bool {
			return c.MaxFileBytes == 10<<20 && c.MaxFileAge == 30*time.Second && c.PartSize == 5<<20 && c.MaxRetries == 3
		}, ""},
		{"bad size", map[string]string{"S3_MAX_FILE_BYTES": "lots"}, nil, "S3_MAX_FILE_BYTES"},
		{"bad age", map[string]string{"S3_MAX_FILE_AGE": "5"}, nil, "S3_MAX_FILE_AGE"},
		{"part too small", map[string]string{"S3_PART_SIZE": "1MiB"}, nil, "PartSize"},
		{"too many parts", map[string]string{"S3_MAX_FILE_BYTES": "100GiB", "S3_PART_SIZE": "5MiB"}, nil, "parts"},
		{"zero age", map[string]string{"S3_MAX_FILE_AGE": "0s"}, nil, "MaxFileAge"},
		{"relative endpoint", map[string]string{"S3_ENDPOINT": "127.0.0.1:9000"}, nil, "endpoint"},
		{"negative retries", map[string]string{"S3_MAX_RETRIES": "-1"}, nil, "MaxRetries"},
		{"bad path style", map[string]string{"S3_FORCE_PATH_STYLE": "maybe"}, nil, "S3_FORCE_PATH_STYLE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s3sink.ConfigFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("config %+v, err %v", c, err)
			}
		})
	}
}

func TestParseBytes(t *testing.T) {
	cases := map[string]int64{"0": 0, "512": 512, "4KiB": 4 << 10, "4K": 4 << 10, "50MiB": 50 << 20, "50 MB": 50 << 20, "1GiB": 1 << 30, "7B": 7}
	for in, want := range cases {
		if got, err := s3sink.ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "9999999999GiB", "12XB"} {
		if _, err := s3sink.ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
}

func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"50MiB", "1", "4 KiB", "-3G", "GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := s3sink.ParseBytes(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseBytes(%q) = %d", s, n)
		}
	})
}

func FuzzObjectKey(f *testing.F) {
	for _, p := range []string{"", "/", "exports/", "//a//b//", "/tmp", "x"} {
		f.Add(p, "acme")
	}
	f.Fuzz(func(t *testing.T, prefix, tenant string) {
		if tenant == "" || strings.Contains(tenant, "/") {
			return // tenants are validated names without slashes
		}
		key := s3sink.ObjectKey(prefix, tenant, time.UnixMilli(1773479406750), "1234a")
		trimmed := strings.Trim(prefix, "/")
		want := tenant + "/1773479406750-data-1234a.export"
		if trimmed != "" {
			want = trimmed + "/" + want
		}
		if key != want || strings.HasPrefix(key, "/") {
			t.Fatalf("ObjectKey(%q, %q) = %q, want %q", prefix, tenant, key, want)
		}
	})
}
