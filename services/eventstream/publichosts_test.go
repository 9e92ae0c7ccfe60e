package eventstream

import "testing"

// TestHardeningConfig: the stack's own base URL is its default public host
// (webhooks may not call it), none when the port is picked at listen time;
// min.insync.replicas is configurable and checked against the replication.
func TestHardeningConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	for _, c := range []struct {
		kv   map[string]string
		want string
	}{
		{nil, "http://127.0.0.1:8080"},
		{map[string]string{"EVENTSTREAM_ADDR": "0.0.0.0:9090"}, "http://127.0.0.1:9090,http://[::1]:9090,http://localhost:9090"},
		{map[string]string{"EVENTSTREAM_ADDR": "192.0.2.7:9090"}, "http://192.0.2.7:9090"},
		{map[string]string{"EVENTSTREAM_ADDR": "127.0.0.1:0"}, ""},
		{map[string]string{"PUBLIC_HOSTS": "https://events.example.com,api.example.com"}, "https://events.example.com,api.example.com"},
	} {
		cfg, err := ConfigFromEnv(env(c.kv))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.PublicHosts != c.want {
			t.Errorf("%v: PublicHosts = %q, want %q", c.kv, cfg.PublicHosts, c.want)
		}
	}
	cfg, err := ConfigFromEnv(env(map[string]string{"KAFKA_TOPIC_MIN_INSYNC_REPLICAS": "2", "KAFKA_TOPIC_REPLICATION": "3"}))
	if err != nil || cfg.TopicMinInsync != 2 {
		t.Fatalf("KAFKA_TOPIC_MIN_INSYNC_REPLICAS: %d, %v", cfg.TopicMinInsync, err)
	}
	for _, kv := range []map[string]string{
		{"KAFKA_TOPIC_MIN_INSYNC_REPLICAS": "-1"},
		{"KAFKA_TOPIC_MIN_INSYNC_REPLICAS": "x"},
		{"KAFKA_TOPIC_MIN_INSYNC_REPLICAS": "3", "KAFKA_TOPIC_REPLICATION": "2"},
	} {
		if _, err := ConfigFromEnv(env(kv)); err == nil {
			t.Errorf("%v accepted", kv)
		}
	}
}
