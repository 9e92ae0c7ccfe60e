package s3sink

import (
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
)

func TestClientCache(t *testing.T) {
	c := newClientCache(DefaultConfig())
	base := catalog.Integration{Tenant: "acme", ID: "s3", Generation: 1, UpdatedAt: time.Unix(100, 0),
		S3: &catalog.S3Target{AccessKeyID: "k", SecretAccessKey: "s", Region: "eu-west-1", Bucket: "b"}}
	first := c.get(&base)
	same := base
	same.S3 = &catalog.S3Target{AccessKeyID: "k", SecretAccessKey: "s", Region: "eu-west-1", Bucket: "b"}
	if c.get(&same) != first {
		t.Fatal("an unchanged integration got a new client")
	}
	cases := map[string]func(*catalog.Integration){
		"patched":       func(in *catalog.Integration) { in.UpdatedAt = in.UpdatedAt.Add(time.Second) },
		"re-registered": func(in *catalog.Integration) { in.Generation++ },
		"new secret":    func(in *catalog.Integration) { in.S3.SecretAccessKey = "s2" },
		"new region":    func(in *catalog.Integration) { in.S3.Region = "us-east-1" },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			in := base
			t3 := *base.S3
			in.S3 = &t3
			change(&in)
			got := c.get(&in)
			if got == first {
				t.Fatal("a changed integration kept its old client")
			}
			if got.Options().Region != in.S3.Region {
				t.Fatalf("client region %q, want %q", got.Options().Region, in.S3.Region)
			}
			c.get(&base) // back to the original for the next case
		})
	}
}
