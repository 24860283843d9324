package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// resolveCommand returns the absolute path of the executable that an
// external plugin's command names, or an error saying why there is none. A
// command containing a path separator is a path, relative to baseDir ("" is
// the working directory); a bare name is looked up in $PATH, as a shell
// would, never in baseDir.
func resolveCommand(command, baseDir string) (string, error) {
	if command == "" {
		return "", errors.New("the command is empty")
	}
	if !strings.ContainsRune(command, '/') && !strings.ContainsRune(command, filepath.Separator) {
		return lookPath(command)
	}
	path := command
	if !filepath.IsAbs(path) {
		path = filepath.Join(baseDir, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	what := fmt.Sprintf("%q", command)
	if abs != command {
		what = fmt.Sprintf("%q (%s)", command, abs)
	}
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s does not exist", what)
	case err != nil:
		return "", err
	case !info.Mode().IsRegular():
		return "", fmt.Errorf("%s is not a regular file", what)
	case runtime.GOOS != "windows" && info.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%s is not executable", what)
	}
	return abs, nil
}

// lookPath finds a bare command name in $PATH.
func lookPath(name string) (string, error) {
	path, err := exec.LookPath(name)
	switch {
	case errors.Is(err, exec.ErrDot):
		return "", fmt.Errorf("%q is in $PATH only through a relative directory; write a path such as ./%s instead", name, name)
	case err != nil:
		return "", fmt.Errorf("%q is not in $PATH; for a program next to the configuration file, write ./%s", name, name)
	}
	return filepath.Abs(path)
}
