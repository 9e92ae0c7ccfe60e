package observability

import (
	"testing"

	"github.com/eventstream/eventstream/pkg/config"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// Every variable the service reads is documented in the README.
func TestREADMEListsEverySetting(t *testing.T) {
	var c Config
	s := config.Defaults()
	c.settings(s)
	testenv.CheckDocumented(t, s.Vars())
}
