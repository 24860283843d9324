package plugin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
)

// envTestPlugin, when set, makes the test binary act as a plugin: Launch runs
// os.Args[0] with it in HostConfig.Env, the way epaxosd re-executes itself to
// run a built-in plugin.
const envTestPlugin = "EPAXOSD_TEST_PLUGIN"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(envTestPlugin); mode {
	case "":
	case "stdout":
		fmt.Println("this line is not a go-plugin handshake")
		os.Exit(0)
	case "hello":
		fmt.Println("hello")
		Serve(echoSM{})
		os.Exit(0)
	case "version2":
		serveWith(goplugin.HandshakeConfig{
			ProtocolVersion: ProtocolVersion + 1, MagicCookieKey: MagicCookieKey, MagicCookieValue: MagicCookieValue,
		})
		os.Exit(0)
	case "cookie":
		serveWith(goplugin.HandshakeConfig{
			ProtocolVersion: ProtocolVersion, MagicCookieKey: "OTHER_APP_PLUGIN", MagicCookieValue: "other",
		})
		os.Exit(0)
	case "hang":
		time.Sleep(time.Hour) // never shakes hands; Launch kills it
		os.Exit(0)
	case "fail":
		fmt.Fprintln(os.Stderr, "loading state: open /var/lib/app/state.db: permission denied")
		fmt.Fprintln(os.Stderr, "fatal: cannot continue")
		os.Exit(3)
	default:
		sm, ok := testPlugins[mode]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown %s=%q\n", envTestPlugin, mode)
			os.Exit(2)
		}
		Serve(sm)
		os.Exit(0)
	}
	// Race-enabled plugin processes would otherwise sleep a second on exit,
	// waiting for late race reports, in every Close.
	_ = os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	code := m.Run()
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// testPlugins are the state machines the test binary serves as a plugin.
// Each echoes every command's key as its result value, except as noted.
var testPlugins = map[string]StateMachine{
	// log logs one line per batch through Logger.
	"log": echoSM{each: func(cmds []Command) {
		Logger().Info("applied batch", "commands", len(cmds))
	}},
	// panic panics on the key "boom".
	"panic": echoSM{each: func(cmds []Command) {
		for _, c := range cmds {
			if string(c.Key) == "boom" {
				panic("boom requested")
			}
		}
	}},
	// exit exits the process on the key "die".
	"exit": echoSM{each: func(cmds []Command) {
		for _, c := range cmds {
			if string(c.Key) == "die" {
				os.Exit(3)
			}
		}
	}},
}

// serveWith serves echoSM{} like Serve, but with handshake hs, as a plugin
// built for another protocol version or another program would.
func serveWith(hs goplugin.HandshakeConfig) {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: hs,
		Plugins:         goplugin.PluginSet{dispenseName: &grpcPlugin{sm: echoSM{}, log: Logger()}},
		GRPCServer:      newGRPCServer,
		Logger:          Logger(),
	})
}

type echoSM struct{ each func([]Command) }

func (s echoSM) Apply(cmds []Command) []Result {
	if s.each != nil {
		s.each(cmds)
	}
	results := make([]Result, len(cmds))
	for i, c := range cmds {
		results[i] = Result{Value: c.Key}
	}
	return results
}

// launchTestPlugin launches this test binary as the plugin of the given mode.
func launchTestPlugin(t *testing.T, mode string, cfg HostConfig) *Host {
	t.Helper()
	cfg.Command = os.Args[0]
	cfg.Env = append(cfg.Env, envTestPlugin+"="+mode)
	h, err := Launch(cfg)
	if err != nil {
		t.Fatalf("Launch(%s plugin): %v", mode, err)
	}
	t.Cleanup(h.Close)
	return h
}

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

// pluginBinary returns the path of one of the module's plugin binaries
// (epaxos-kv, epaxos-counter), building them all on first use.
func pluginBinary(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() { builtDir, buildErr = buildPlugins() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(builtDir, name)
}

func buildPlugins() (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building plugin binaries needs the go command: %w", err)
	}
	gomod, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	dir, err := os.MkdirTemp("", "epaxosd-plugins-")
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./plugins/kv/cmd/epaxos-kv", "./plugins/counter/cmd/epaxos-counter")
	cmd := exec.Command(gobin, args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), root, err, out.String())
	}
	return dir, nil
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
