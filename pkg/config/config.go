// Package config fills a service's typed Config from its environment with
// one line per setting: the variable, its default and what it means, in the
// shape of Grafana Tempo's RegisterFlagsAndApplyDefaults. A service lists its
// settings once, in a method over a *Set; run over FromEnv(getenv) the list
// reads the environment (every malformed value reported, all errors joined),
// run over Defaults() it fills the zero fields of a Config built in code
// (tests, the local runner) with the same defaults, and Vars documents it.
package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Var is one documented setting.
type Var struct {
	Name, Default, Help string
}

// Set is one pass over a service's settings.
type Set struct {
	getenv func(string) string // nil: Defaults mode
	vars   []Var
	errs   []error
}

// FromEnv returns a Set that reads each setting's variable through getenv
// (os.Getenv in main); an unset or empty variable takes the default.
func FromEnv(getenv func(string) string) *Set { return &Set{getenv: getenv} }

// Defaults returns a Set that only gives zero fields their defaults.
func Defaults() *Set { return &Set{} }

// Err returns every malformed value, joined (nil when all parsed).
func (s *Set) Err() error { return errors.Join(s.errs...) }

// Vars lists the settings seen, in order.
func (s *Set) Vars() []Var { return s.vars }

// Fail records an error found while reading the settings (a check that
// needs several of them, for instance).
func (s *Set) Fail(err error) { s.errs = append(s.errs, err) }

// Custom is a setting with its own parser: in FromEnv mode p is parsed from
// the variable (def when unset); in Defaults mode p is parsed from def when
// it is the zero value and def is not empty (no default: nothing to apply).
// A parse error names the variable.
func Custom[T any](s *Set, p *T, name, def, help string, parse func(string) (T, error)) {
	s.vars = append(s.vars, Var{Name: name, Default: def, Help: help})
	v := def
	if s.getenv == nil {
		if def == "" || !reflect.ValueOf(p).Elem().IsZero() {
			return
		}
	} else if e := strings.TrimSpace(s.getenv(name)); e != "" {
		v = e
	}
	x, err := parse(v)
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
		return
	}
	*p = x
}

// String is a text setting.
func (s *Set) String(p *string, name, def, help string) {
	Custom(s, p, name, def, help, func(v string) (string, error) { return v, nil })
}

// Bool is a true/false setting (strconv.ParseBool: 1, t, true, 0, f, false...).
func (s *Set) Bool(p *bool, name string, def bool, help string) {
	Custom(s, p, name, strconv.FormatBool(def), help, func(v string) (bool, error) {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("%q is not true or false", v)
		}
		return b, nil
	})
}

// Int is an integer setting.
func (s *Set) Int(p *int, name string, def int, help string) {
	Custom(s, p, name, strconv.Itoa(def), help, func(v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", v)
		}
		return n, nil
	})
}

// Int64 is a 64-bit integer setting (byte counts).
func (s *Set) Int64(p *int64, name string, def int64, help string) {
	Custom(s, p, name, strconv.FormatInt(def, 10), help, func(v string) (int64, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", v)
		}
		return n, nil
	})
}

// Float64 is a finite number setting.
func (s *Set) Float64(p *float64, name string, def float64, help string) {
	Custom(s, p, name, strconv.FormatFloat(def, 'g', -1, 64), help, ParseFloat)
}

// Duration is a Go duration setting ("1500ms", "30s", "720h").
func (s *Set) Duration(p *time.Duration, name string, def time.Duration, help string) {
	Custom(s, p, name, FormatDuration(def), help, func(v string) (time.Duration, error) {
		d, err := time.ParseDuration(v)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (like 1500ms, 30s, 720h)", v)
		}
		return d, nil
	})
}

// PositiveInt is an integer setting that must be above zero when set.
func (s *Set) PositiveInt(p *int, name string, def int, help string) {
	Custom(s, p, name, strconv.Itoa(def), help, func(v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a positive integer", v)
		}
		return n, nil
	})
}

// PositiveInt64 is a 64-bit integer setting that must be above zero when set.
func (s *Set) PositiveInt64(p *int64, name string, def int64, help string) {
	Custom(s, p, name, strconv.FormatInt(def, 10), help, func(v string) (int64, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a positive integer", v)
		}
		return n, nil
	})
}

// PositiveDuration is a duration setting that must be above zero when set.
func (s *Set) PositiveDuration(p *time.Duration, name string, def time.Duration, help string) {
	Custom(s, p, name, FormatDuration(def), help, func(v string) (time.Duration, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("%q is not a positive duration (like 1500ms, 30s, 720h)", v)
		}
		return d, nil
	})
}

// List is a comma- (or space-) separated setting; empty items are dropped.
func (s *Set) List(p *[]string, name string, def []string, help string) {
	Custom(s, p, name, strings.Join(def, ","), help, func(v string) ([]string, error) { return SplitList(v), nil })
}

// SplitList splits a comma- or space-separated list, dropping empty items
// (nil when none is left).
func SplitList(v string) []string {
	out := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	if len(out) == 0 {
		return nil
	}
	return out
}

// ParseFloat parses a finite number.
func ParseFloat(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	return f, nil
}

// FormatDuration writes d the way people write it: 720h, 1m30s, 15s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
