package observability

import (
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://x/y", "AUTH_HS256_SECRET": testHS256Secret}
	cases := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.Addr != DefaultAddr || c.TailInterval != DefaultTailInterval || c.TailBuffer != DefaultTailBuffer || c.Heartbeat != DefaultHeartbeat {
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		{name: "overrides", env: map[string]string{"OBSERVABILITY_ADDR": ":9999", "OBSERVABILITY_TAIL_INTERVAL": "1s",
			"OBSERVABILITY_TAIL_LOOKBACK": "2m", "OBSERVABILITY_TAIL_BUFFER": "10", "OBSERVABILITY_HEARTBEAT": "5s"},
			check: func(t *testing.T, c Config) {
				if c.Addr != ":9999" || c.TailInterval != time.Second || c.TailLookback != 2*time.Minute || c.TailBuffer != 10 || c.Heartbeat != 5*time.Second {
					t.Errorf("overrides not applied: %+v", c)
				}
			}},
		{name: "no database", env: map[string]string{"DATABASE_URL": ""}, wantErr: "DATABASE_URL"},
		{name: "no auth", env: map[string]string{"AUTH_HS256_SECRET": ""}, wantErr: "AUTH"},
		{name: "bad duration", env: map[string]string{"OBSERVABILITY_TAIL_INTERVAL": "soon"}, wantErr: "OBSERVABILITY_TAIL_INTERVAL"},
		{name: "negative duration", env: map[string]string{"OBSERVABILITY_HEARTBEAT": "-1s"}, wantErr: "OBSERVABILITY_HEARTBEAT"},
		{name: "bad buffer", env: map[string]string{"OBSERVABILITY_TAIL_BUFFER": "10x"}, wantErr: "OBSERVABILITY_TAIL_BUFFER"},
		{name: "lookback shorter than interval", env: map[string]string{"OBSERVABILITY_TAIL_INTERVAL": "10s", "OBSERVABILITY_TAIL_LOOKBACK": "1s"}, wantErr: "LOOKBACK"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range c.env {
				env[k] = v
			}
			cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, cfg)
		})
	}
}
