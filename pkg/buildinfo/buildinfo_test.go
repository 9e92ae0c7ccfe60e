package buildinfo_test

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/eventstream/eventstream/pkg/buildinfo"
)

func TestRequested(t *testing.T) {
	cases := []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--version"}, true},
		{[]string{"-version"}, true},
		{[]string{"migrate", "--version"}, false},
		{[]string{"version"}, false},
	}
	for _, c := range cases {
		if got := buildinfo.Requested(c.args); got != c.want {
			t.Errorf("Requested(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

func TestPrint(t *testing.T) {
	for _, c := range []struct{ in, want string }{{"v1.2.3", "v1.2.3"}, {"", "dev"}} {
		var b bytes.Buffer
		buildinfo.Print(&b, "ingest", c.in)
		if !regexp.MustCompile(`^ingest ` + regexp.QuoteMeta(c.want) + ` \(go[^)]*\)\n$`).MatchString(b.String()) {
			t.Errorf("Print(%q) = %q", c.in, b.String())
		}
	}
}
