package api

import (
	"errors"
	"fmt"
	"time"
)

// ErrTimeFormat says how a time must be written.
var ErrTimeFormat = errors.New("want RFC 3339 (2026-01-02T15:04:05Z) or YYYY-MM-DD")

// ParseTime reads a time as every command, route and declare file takes
// one: RFC 3339, or a YYYY-MM-DD date meaning its midnight UTC. The result
// is in UTC.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, ErrTimeFormat
}

// HumanDuration prints d the way people read a wait: 6d23h, 3h5m, 42s.
func HumanDuration(d time.Duration) string {
	if d < 0 {
		return "0s"
	}
	d = d.Round(time.Second)
	days, rest := d/(24*time.Hour), d%(24*time.Hour)
	h, m, s := rest/time.Hour, rest%time.Hour/time.Minute, rest%time.Minute/time.Second
	switch {
	case days > 0 && h > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case days > 0:
		return fmt.Sprintf("%dd", days)
	case h > 0 && m > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case h > 0:
		return fmt.Sprintf("%dh", h)
	case m > 0 && s > 0:
		return fmt.Sprintf("%dm%ds", m, s)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%ds", s)
}

// ItemWords names an item order after an order's number: " item ID", or
// "" for the whole order.
func ItemWords(itemOrderID string) string {
	if itemOrderID == "" {
		return ""
	}
	return " item " + itemOrderID
}

// ParseFlagTime is ParseTime for an optional flag or field named name: nil
// for "", else the time or an error naming name and the value.
func ParseFlagTime(name, s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := ParseTime(s)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", name, s, err)
	}
	return &t, nil
}
