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
		{name: "bad database url", env: map[string]string{"DATABASE_URL": "postgres://u:hunter2@host:port/db"}, wantErr: "DATABASE_URL"},
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
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || strings.Contains(err.Error(), "hunter2") {
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

// Every problem is reported in one error, the malformed variables and the
// missing ones alike, so an operator fixes them in one go.
func TestConfigFromEnvReportsEveryProblem(t *testing.T) {
	env := map[string]string{"OBSERVABILITY_TAIL_INTERVAL": "soon", "OBSERVABILITY_TAIL_BUFFER": "-3",
		"OBSERVABILITY_QUERY_TIMEOUT": "0s", "AUTH_HS256_SECRET": "short"}
	_, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"OBSERVABILITY_TAIL_INTERVAL", "OBSERVABILITY_TAIL_BUFFER", "OBSERVABILITY_QUERY_TIMEOUT", "DATABASE_URL", "AUTH_HS256_SECRET"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// A Config built in code gets the same defaults as the environment's.
func TestWithDefaultsMatchesEnvironment(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://x/y", "AUTH_HS256_SECRET": testHS256Secret}
	fromEnv, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	inCode := Config{DatabaseURL: "postgres://x/y", Auth: fromEnv.Auth}.WithDefaults()
	if inCode != fromEnv {
		t.Errorf("WithDefaults = %+v, ConfigFromEnv = %+v", inCode, fromEnv)
	}
}
