package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SystemConfigFile is the last place Find looks for a configuration file.
const SystemConfigFile = "/etc/epaxos/config.hcl"

// ErrNoConfigFile is wrapped by Find's error when it finds no configuration
// file in any of the places it searches.
var ErrNoConfigFile = errors.New("no configuration file found")

// Find returns the path of the configuration file to load: explicit if it
// is not empty; otherwise $EPAXOS_CONFIG (read through getenv, which may be
// nil) if that is set; otherwise the first of ./config.hcl, ~/.epaxos.hcl
// and /etc/epaxos/config.hcl that exists. An explicit or $EPAXOS_CONFIG path
// must exist. When none of the others does, the error wraps
// ErrNoConfigFile and lists the places searched.
func Find(explicit string, getenv func(string) string) (string, error) {
	if explicit != "" {
		return named(explicit, "")
	}
	if getenv != nil {
		if p := getenv(EnvConfig); p != "" {
			return named(p, " (from "+EnvConfig+")")
		}
	}
	return search(searchPath())
}

// named returns path if it is a file that exists; from says where the path
// came from, for the error.
func named(path, from string) (string, error) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("config file %s%s does not exist", path, from)
	case err != nil:
		return "", fmt.Errorf("config file%s: %w", from, err)
	case info.IsDir():
		return "", fmt.Errorf("config file %s%s is a directory", path, from)
	}
	return path, nil
}

// searchPath returns the places Find searches when given no path, in
// order. ~ is os.UserHomeDir; it is left out if there is no home directory.
func searchPath() []string {
	paths := []string{"./config.hcl"}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		paths = append(paths, filepath.Join(home, ".epaxos.hcl"))
	}
	return append(paths, SystemConfigFile)
}

// search returns the first of paths that exists and is not a directory.
// A path that exists but cannot be examined is an error rather than being
// passed over, lest a less specific file be loaded in its place.
func search(paths []string) (string, error) {
	for _, p := range paths {
		info, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return "", fmt.Errorf("config file: %w", err)
		case info.IsDir():
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("%w; searched %s; pass a path or set %s",
		ErrNoConfigFile, strings.Join(paths, ", "), EnvConfig)
}
