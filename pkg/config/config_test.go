package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/config"
)

type cfg struct {
	Addr    string
	Workers int
	Limit   int64
	Rate    float64
	On      bool
	Wait    time.Duration
	Hosts   []string
	Level   level
}

type level int

func parseLevel(v string) (level, error) {
	switch v {
	case "low":
		return 1, nil
	case "high":
		return 2, nil
	}
	return 0, errors.New("want low or high")
}

func (c *cfg) settings(s *config.Set) {
	s.String(&c.Addr, "T_ADDR", ":8080", "listen address")
	s.Int(&c.Workers, "T_WORKERS", 4, "workers")
	s.Int64(&c.Limit, "T_LIMIT", 1<<20, "bytes")
	s.Float64(&c.Rate, "T_RATE", 2.5, "per second")
	s.Bool(&c.On, "T_ON", true, "switch")
	s.Duration(&c.Wait, "T_WAIT", 720*time.Hour, "wait")
	s.List(&c.Hosts, "T_HOSTS", nil, "hosts")
	config.Custom(s, &c.Level, "T_LEVEL", "low", "level", parseLevel)
}

func TestFromEnvAndDefaults(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		want    cfg
		errs    []string // variables the error must name
		unnamed []string // variables it must not name
	}{
		{name: "unset: defaults", env: nil,
			want: cfg{Addr: ":8080", Workers: 4, Limit: 1 << 20, Rate: 2.5, On: true, Wait: 720 * time.Hour, Level: 1}},
		{name: "set", env: map[string]string{"T_ADDR": ":1", "T_WORKERS": " 9 ", "T_LIMIT": "5", "T_RATE": "0.5", "T_ON": "false",
			"T_WAIT": "90s", "T_HOSTS": "a, b,,c", "T_LEVEL": "high"},
			want: cfg{Addr: ":1", Workers: 9, Limit: 5, Rate: 0.5, Wait: 90 * time.Second, Hosts: []string{"a", "b", "c"}, Level: 2}},
		{name: "every error at once", env: map[string]string{"T_WORKERS": "many", "T_RATE": "NaN", "T_ON": "perhaps",
			"T_WAIT": "soon", "T_LEVEL": "mid"},
			errs: []string{"T_WORKERS", "T_RATE", "T_ON", "T_WAIT", "T_LEVEL"}, unnamed: []string{"T_ADDR", "T_LIMIT"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c cfg
			s := config.FromEnv(func(k string) string { return tc.env[k] })
			c.settings(s)
			err := s.Err()
			if tc.errs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !equal(c, tc.want) {
					t.Fatalf("got %+v, want %+v", c, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, n := range tc.errs {
				if !strings.Contains(err.Error(), n+": ") {
					t.Errorf("error %q does not name %s", err, n)
				}
			}
			for _, n := range tc.unnamed {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q names %s, whose value is fine", err, n)
				}
			}
		})
	}

	// Defaults fill zero fields only, from the same lines.
	c := cfg{Workers: 2, Hosts: []string{"x"}}
	s := config.Defaults()
	c.settings(s)
	want := cfg{Addr: ":8080", Workers: 2, Limit: 1 << 20, Rate: 2.5, On: true, Wait: 720 * time.Hour, Hosts: []string{"x"}, Level: 1}
	if s.Err() != nil || !equal(c, want) {
		t.Fatalf("defaults: %+v, %v; want %+v", c, s.Err(), want)
	}
	var names []string
	for _, v := range s.Vars() {
		names = append(names, v.Name+"="+v.Default)
	}
	if got := strings.Join(names, " "); got != "T_ADDR=:8080 T_WORKERS=4 T_LIMIT=1048576 T_RATE=2.5 T_ON=true T_WAIT=720h T_HOSTS= T_LEVEL=low" {
		t.Fatalf("vars: %s", got)
	}
}

func equal(a, b cfg) bool {
	return slices.Equal(a.Hosts, b.Hosts) && a.Addr == b.Addr && a.Workers == b.Workers && a.Limit == b.Limit &&
		a.Rate == b.Rate && a.On == b.On && a.Wait == b.Wait && a.Level == b.Level
}

func TestPositive(t *testing.T) {
	for _, v := range []string{"0", "-1", "x"} {
		var n int
		var m int64
		var d time.Duration
		s := config.FromEnv(func(string) string { return v })
		s.PositiveInt(&n, "N", 1, "")
		s.PositiveInt64(&m, "M", 1, "")
		s.PositiveDuration(&d, "D", time.Second, "")
		for _, name := range []string{"N: ", "M: ", "D: "} {
			if err := s.Err(); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%q: error %v does not name %s", v, err, name)
			}
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{720 * time.Hour: "720h", 90 * time.Second: "1m30s", 15 * time.Second: "15s",
		5 * time.Minute: "5m", 1500 * time.Millisecond: "1.5s", 2*time.Hour + 3*time.Minute: "2h3m"} {
		if got := config.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %s, want %s", d, got, want)
		}
	}
}
