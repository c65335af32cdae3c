package config

import (
	"errors"
	"fmt"
	"io"
)

// MaxSize is the most a config file may hold: 1 MiB.
const MaxSize = 1 << 20

// ErrTooLarge is returned for a config file of more than MaxSize bytes.
var ErrTooLarge = errors.New("larger than 1 MiB, the most a config file may hold")

// readLimited reads r up to MaxSize bytes, refusing more, so that
// --config /dev/zero is an error, not an out-of-memory crash.
func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(data) > MaxSize {
		return nil, ErrTooLarge
	}
	return data, nil
}
