package main

import (
	"io"

	"github.com/hashicorp/go-hclog"
)

// newLogger returns the daemon's logger: human-readable lines on w at the
// configured level.
func newLogger(name, level string, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   name,
		Level:  hclog.LevelFromString(level),
		Output: w,
	})
}
