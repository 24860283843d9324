package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/client"
)

// binaries built once by TestMain.
var (
	epaxosd     string
	counterPlug string
	kvPlug      string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "epaxosd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	epaxosd = filepath.Join(dir, "epaxosd")
	counterPlug = filepath.Join(dir, "epaxos-counter")
	kvPlug = filepath.Join(dir, "epaxos-kv")
	for out, pkg := range map[string]string{
		epaxosd:     "./cmd/epaxosd",
		counterPlug: "./plugins/counter/cmd/epaxos-counter",
		kvPlug:      "./plugins/kv/cmd/epaxos-kv",
	} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = ".."
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, b)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is a set of epaxosd agent processes.
type cluster struct {
	t     *testing.T
	dir   string
	addrs []string
	files []string // each replica's configuration file
	procs []*exec.Cmd
	logs  []*lockedBuffer
	tls   *tls.Config // what clients connect with; nil for plain text
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var names = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"}

// freePorts reserves n loopback ports by binding and releasing them.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var ls []net.Listener
	var addrs []string
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs
}

// startCluster writes one HCL file per replica and starts n agents.
// pluginBlock is the plugin block of every file.
func startCluster(t *testing.T, n int, pluginBlock string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), addrs: freePorts(t, n)}
	var replicas strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&replicas, "replica %q {\n  pid     = %d\n  address = %q\n}\n", names[i], i, c.addrs[i])
	}
	for i := 0; i < n; i++ {
		file := filepath.Join(c.dir, names[i]+".hcl")
		src := fmt.Sprintf("name      = %q\ndata_dir  = %q\ntimeout   = \"200ms\"\nlog_level = \"debug\"\n%s\n%s",
			names[i], filepath.Join(c.dir, "data", names[i]), pluginBlock, replicas.String())
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		c.files = append(c.files, file)
		c.procs = append(c.procs, nil)
		c.logs = append(c.logs, &lockedBuffer{})
		c.start(i)
	}
	t.Cleanup(c.stop)
	c.waitReady()
	return c
}

// start starts replica i's agent; its output is appended to its log.
func (c *cluster) start(i int) {
	c.t.Helper()
	cmd := exec.Command(epaxosd, "agent", "-config", c.files[i])
	cmd.Stdout, cmd.Stderr = c.logs[i], c.logs[i]
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[i] = cmd
}

// kill stops replica i with SIGKILL: no shutdown code runs.
func (c *cluster) kill(i int) {
	c.t.Helper()
	p := c.procs[i]
	if err := p.Process.Kill(); err != nil {
		c.t.Fatal(err)
	}
	p.Wait()
	c.procs[i] = nil
	fmt.Fprintf(c.logs[i], "---- SIGKILL ----\n")
}

func (c *cluster) stop() {
	for _, p := range c.procs {
		if p != nil {
			p.Process.Signal(syscall.SIGTERM)
		}
	}
	for i, p := range c.procs {
		if p == nil {
			continue
		}
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				c.t.Errorf("replica %s exited with %v", names[i], err)
			}
		case <-time.After(10 * time.Second):
			p.Process.Kill()
			c.t.Errorf("replica %s did not stop within 10s of SIGTERM", names[i])
		}
	}
	if c.t.Failed() {
		for i, l := range c.logs {
			c.t.Logf("---- log of %s ----\n%s", names[i], l.String())
		}
	}
}

// client returns a client that talks to the replicas at addrs.
func (c *cluster) client(addrs ...string) *client.Client {
	c.t.Helper()
	cl, err := client.New(client.Config{Addrs: addrs, TLS: c.tls})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// waitReady waits until every replica answers a read.
func (c *cluster) waitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range c.addrs {
		cl := c.client(addr)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := cl.Propose(ctx, client.Read, "ready", nil)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("replica at %s not serving after 30s: %v", addr, err)
			}
		}
	}
}

func propose(t *testing.T, cl *client.Client, access client.Access, key, value string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var v []byte
	if access == client.Write {
		v = []byte(value)
	}
	out, err := cl.Propose(ctx, access, key, v)
	if err != nil {
		t.Fatalf("%s %q: %v", access, key, err)
	}
	return string(out)
}

// A shared counter incremented concurrently through every replica ends at
// the same total everywhere, and the totals the clients saw are exactly
// 1..total (each increment applied once, in one order).
func TestE2E_ConcurrentCounterIncrementsAgreeOnEveryReplica(t *testing.T) {
	for _, n := range []int{3, 5, 7} {
		t.Run(fmt.Sprintf("N%d", n), func(t *testing.T) {
			const perClient = 100
			c := startCluster(t, n, "plugin \"counter\" {}\n")
			clients := min(n, 3)
			totals := make(chan string, clients*perClient)
			var wg sync.WaitGroup
			for i := 0; i < clients; i++ {
				cl := c.client(c.addrs[i])
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < perClient; j++ {
						ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
						out, err := cl.Propose(ctx, client.Write, "hits", []byte("1"))
						cancel()
						if err != nil {
							t.Errorf("increment through %s: %v", c.addrs[i], err)
							return
						}
						totals <- string(out)
					}
				}()
			}
			wg.Wait()
			close(totals)
			seen := map[string]bool{}
			for tot := range totals {
				if seen[tot] {
					t.Errorf("two increments returned total %s", tot)
				}
				seen[tot] = true
			}
			want := clients * perClient
			for k := 1; k <= want; k++ {
				if !seen[fmt.Sprint(k)] {
					t.Errorf("no increment returned total %d", k)
				}
			}
			for _, addr := range c.addrs {
				if got := propose(t, c.client(addr), client.Read, "hits", ""); got != fmt.Sprint(want) {
					t.Errorf("replica %s reads %s, want %d", addr, got, want)
				}
			}
		})
	}
}

// kv through an external plugin binary named by `command`: writes from
// several goroutines through different replicas read back identically from
// every replica, and the counter's error reply reaches the client.
func TestE2E_KVWritesThroughExternalPluginReadBackEverywhere(t *testing.T) {
	c := startCluster(t, 3, fmt.Sprintf("plugin \"kv\" {\n  command = %q\n}\n", kvPlug))
	const writers, perWriter = 4, 50
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		cl := c.client(c.addrs[w%len(c.addrs)])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perWriter; j++ {
				// Own keys (last write known) and a shared hot key.
				own := fmt.Sprintf("w%d-k%d", w, j%10)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := cl.Propose(ctx, client.Write, own, []byte(fmt.Sprintf("v%d", j)))
				if err == nil {
					_, err = cl.Propose(ctx, client.Write, "shared", []byte(fmt.Sprintf("w%d-%d", w, j)))
				}
				cancel()
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var shared []string
	for _, addr := range c.addrs {
		cl := c.client(addr)
		for w := 0; w < writers; w++ {
			for k := 0; k < 10; k++ {
				key := fmt.Sprintf("w%d-k%d", w, k)
				want := fmt.Sprintf("v%d", perWriter-10+k)
				if got := propose(t, cl, client.Read, key, ""); got != want {
					t.Errorf("replica %s: %s = %q, want %q", addr, key, got, want)
				}
			}
		}
		shared = append(shared, propose(t, cl, client.Read, "shared", ""))
		if got := propose(t, cl, client.Delete, "w0-k0", ""); got != "" {
			t.Errorf("delete returned %q", got)
		}
		if got := propose(t, cl, client.Read, "w0-k0", ""); got != "" {
			t.Errorf("after delete, w0-k0 = %q", got)
		}
		propose(t, cl, client.Write, "w0-k0", fmt.Sprintf("v%d", perWriter-10))
	}
	for _, s := range shared[1:] {
		if s != shared[0] {
			t.Errorf("replicas disagree on the shared key: %q", shared)
		}
	}
	if !strings.HasSuffix(shared[0], fmt.Sprint(perWriter-1)) {
		t.Errorf("shared key holds %q, not some writer's last write", shared[0])
	}
}

// The CLI fails over past an address that refuses connections, prints the
// reply, and reports a state machine's error reply with a non-zero status.
func TestE2E_ProposeCLIFailsOverAndReportsErrors(t *testing.T) {
	c := startCluster(t, 3, "plugin \"counter\" {}\n")
	dead := freePorts(t, 1)[0]
	run := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		cmd := exec.Command(epaxosd, append([]string{"propose"}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	out, stderr, err := run("-addr", dead+","+c.addrs[1], "-access", "write", "n", "41")
	if err != nil || out != "41\n" {
		t.Fatalf("write through %s,%s: out %q, err %v, stderr %q", dead, c.addrs[1], out, err, stderr)
	}
	out, _, err = run("-addr", c.addrs[2], "-access", "read", "n")
	if err != nil || out != "41\n" {
		t.Fatalf("read: out %q err %v", out, err)
	}
	out, stderr, err = run("-addr", c.addrs[0], "-access", "write", "n", "lots")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || out != "" || !strings.Contains(stderr, "not a decimal integer") {
		t.Fatalf("non-integer increment: out %q stderr %q err %v", out, stderr, err)
	}
	if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("error is not one line: %q", stderr)
	}
}

// A configuration error stops the agent before anything starts and names
// file:line:col.
func TestE2E_AgentRejectsBadConfigWithPosition(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.hcl")
	src := "name = \"alpha\"\ntimeout = \"soon\"\nplugin \"kv\" {}\nreplica \"alpha\" {\n  pid = 0\n  address = \"127.0.0.1:1\"\n}\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(epaxosd, "agent", "-config", file)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("agent accepted a bad config: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), file+":2:11:") {
		t.Errorf("error does not name %s:2:11:\n%s", file, out.String())
	}
	if !strings.Contains(out.String(), file+":4:1:") && !strings.Contains(out.String(), "at least 3") {
		t.Errorf("error does not report the 1-replica cluster:\n%s", out.String())
	}
}
