package config

import (
	"fmt"
	"os"
)

// Load reads the configuration file at path and returns it with the
// process's environment overrides applied, as Parse does with os.Getenv.
// A file that cannot be read is a plain error; anything wrong with its
// contents is an *Error.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(src, path, os.Getenv)
}
