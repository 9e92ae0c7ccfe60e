package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventstream/eventstream/pkg/config"
)

// Every variable the service reads is documented in the README.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	s := config.Defaults()
	c.settings(s)
	for _, v := range s.Vars() {
		if !strings.Contains(string(readme), "`"+v.Name+"`") {
			t.Errorf("README.md does not mention %s (%s; default %q)", v.Name, v.Help, v.Default)
		}
	}
}
