package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in YAML as a Go duration string: "90s",
// "1h30m", "168h". It prints the same way, without zero units.
type Duration struct {
	time.Duration
}

// D returns d as a Duration.
func D(d time.Duration) Duration { return Duration{d} }

// UnmarshalYAML decodes a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration such as \"5s\"", n.Line)}}
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	d.Duration = v
	return nil
}

// MarshalText renders the duration as String does, so printed configs read
// like config.yaml.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String renders the duration as time.Duration does, without zero units:
// "168h", "1m30s", "0s".
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parseDuration is time.ParseDuration with an error that quotes the text as
// written and hints at a missing unit.
func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err == nil {
		return v, nil
	}
	if s != "" && strings.Trim(s, "+-.0123456789") == "" {
		return 0, fmt.Errorf("%q: not a duration (missing unit, as in \"%ss\")", s, s)
	}
	return 0, fmt.Errorf("%q: not a duration", s)
}

// Backoff is a schedule of delays: entry n is the delay after the n-th
// failure (counting from 0); once the list is used up its last entry
// repeats.
type Backoff []Duration

// Delay returns the delay after failure n (0-based): b[n], or the last entry
// for any n past the end, or the first for n < 0; 0 when b is empty.
func (b Backoff) Delay(n int) time.Duration {
	if len(b) == 0 {
		return 0
	}
	n = max(0, min(n, len(b)-1))
	return b[n].Duration
}

// backoff builds a Backoff from durations.
func backoff(ds ...time.Duration) Backoff {
	b := make(Backoff, len(ds))
	for i, d := range ds {
		b[i] = D(d)
	}
	return b
}
