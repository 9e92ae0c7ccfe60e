package eventstream

import (
	"testing"

	"github.com/eventstream/eventstream/pkg/config"
	"github.com/eventstream/eventstream/pkg/testenv"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	t.Run("defaults", func(t *testing.T) {
		c, err := ConfigFromEnv(env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if c.Addr != "127.0.0.1:8080" || c.PostgresPort != 5433 || c.KafkaPort != 9092 || c.S3Port != 9000 ||
			c.DataDir != ".data" || c.DemoTenant != "demo" || c.DatabaseURL != "" || len(c.KafkaBrokers) != 0 {
			t.Errorf("defaults = %+v", c)
		}
	})
	t.Run("overrides", func(t *testing.T) {
		c, err := ConfigFromEnv(env(map[string]string{
			"EVENTSTREAM_ADDR": "http://127.0.0.1:18080/", "EVENTSTREAM_KAFKA_PORT": "0",
			"KAFKA_BROKERS": "a:9092, b:9092", "DATABASE_URL": "postgres://x/y", "EVENTSTREAM_TOKEN_TTL": "1h",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if c.Addr != "127.0.0.1:18080" || c.KafkaPort != 0 || len(c.KafkaBrokers) != 2 || c.KafkaBrokers[1] != "b:9092" ||
			c.DatabaseURL != "postgres://x/y" || c.TokenTTL.String() != "1h0m0s" {
			t.Errorf("config = %+v", c)
		}
	})
	bad := map[string]map[string]string{
		"port":        {"EVENTSTREAM_POSTGRES_PORT": "70000"},
		"addr":        {"EVENTSTREAM_ADDR": "8080"},
		"tenant":      {"EVENTSTREAM_DEMO_TENANT": "Demo_1"},
		"ttl":         {"EVENTSTREAM_TOKEN_TTL": "soon"},
		"retention":   {"KAFKA_TOPIC_RETENTION": "24h"},
		"partitions":  {"KAFKA_TOPIC_PARTITIONS": "0"},
		"log level":   {"EVENTSTREAM_LOG_LEVEL": "loud"},
		"replication": {"KAFKA_TOPIC_REPLICATION": "x"},
	}
	for name, kv := range bad {
		t.Run("bad "+name, func(t *testing.T) {
			if _, err := ConfigFromEnv(env(kv)); err == nil {
				t.Errorf("%v accepted", kv)
			}
		})
	}
}

// Every variable the runner reads is documented in the README.
func TestREADMEListsEverySetting(t *testing.T) {
	var c Config
	s := config.Defaults()
	c.settings(s)
	testenv.CheckDocumented(t, s.Vars())
}
