package api

import (
	"errors"
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
