package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/client"
)

// replicaPort is every replica's port, on its own address.
const replicaPort = 7000

// cluster is n epaxosd agents, each in its own namespace of nw.
type cluster struct {
	t     *testing.T
	n     int
	nw    *network
	dir   string
	files []string // each replica's configuration file
	logs  []string // each replica's log file (stdout and stderr, appended)
	addrs []string

	mu       sync.Mutex
	procs    []*proc // nil while a replica is down
	paused   []bool
	problems []string // replicas that exited on their own
}

// proc is one run of a replica's agent.
type proc struct {
	cmd      *exec.Cmd
	pid      int
	done     chan struct{} // closed when it has exited
	err      error         // its exit status, once done
	expected atomic.Bool   // we killed or stopped it
}

// newCluster writes the replicas' configuration and starts them.
func newCluster(t *testing.T, nw *network, seed int64, logLevel string) *cluster {
	t.Helper()
	n := len(nw.ips)
	c := &cluster{t: t, n: n, nw: nw, dir: t.TempDir(), procs: make([]*proc, n), paused: make([]bool, n)}
	var replicas strings.Builder
	for i := 0; i < n; i++ {
		addr := fmt.Sprintf("%s:%d", nw.ips[i], replicaPort)
		c.addrs = append(c.addrs, addr)
		fmt.Fprintf(&replicas, "replica \"r%d\" {\n  pid     = %d\n  address = %q\n}\n", i, i, addr)
	}
	for i := 0; i < n; i++ {
		file := filepath.Join(c.dir, fmt.Sprintf("r%d.hcl", i))
		src := fmt.Sprintf("name      = \"r%d\"\ndata_dir  = %q\ntimeout   = \"300ms\"\nlog_level = %q\nseed      = %d\nplugin \"kv\" {}\n%s",
			i, filepath.Join(c.dir, "data", fmt.Sprintf("r%d", i)), logLevel, seed%(1<<40)+int64(i)+1, replicas.String())
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		c.files = append(c.files, file)
		c.logs = append(c.logs, filepath.Join(c.dir, fmt.Sprintf("r%d.log", i)))
	}
	t.Cleanup(c.stopAll)
	t.Cleanup(onInterrupt(c.killAll))
	for i := 0; i < n; i++ {
		if err := c.start(i); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// note appends a line to replica i's log, so the log shows the faults.
func (c *cluster) note(i int, format string, args ...any) {
	f, err := os.OpenFile(c.logs[i], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintf(f, "==== chaos %s: %s ====\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	f.Close()
}

// start starts replica i's agent in its namespace; `ip netns exec` execs
// the agent in place, so the process is the agent.
func (c *cluster) start(i int) error {
	c.note(i, "start")
	f, err := os.OpenFile(c.logs[i], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("ip", "netns", "exec", c.nw.ns[i], epaxosd, "agent", "-config", c.files[i])
	cmd.Stdout, cmd.Stderr = f, f
	// If this test process dies, so do the replicas.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start r%d: %w", i, err)
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.err = err
		close(p.done)
		if !p.expected.Load() {
			why := lastWords(c.logs[i])
			c.note(i, "exited on its own: %v", err)
			c.mu.Lock()
			c.problems = append(c.problems, fmt.Sprintf("replica r%d (pid %d) exited on its own: %v; its log ends:\n%s", i, p.pid, err, why))
			c.mu.Unlock()
		}
	}()
	c.mu.Lock()
	c.procs[i], c.paused[i] = p, false
	c.mu.Unlock()
	return nil
}

func (c *cluster) proc(i int) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[i]
}

// running reports whether replica i's agent is up (paused or not).
func (c *cluster) running(i int) bool {
	p := c.proc(i)
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill SIGKILLs replica i and waits for it to exit.
func (c *cluster) kill(i int) error {
	p := c.proc(i)
	if p == nil {
		return fmt.Errorf("r%d is not running", i)
	}
	c.note(i, "SIGKILL")
	p.expected.Store(true)
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("r%d (pid %d) still alive 30s after SIGKILL", i, p.pid)
	}
	c.mu.Lock()
	c.procs[i], c.paused[i] = nil, false
	c.mu.Unlock()
	return nil
}

// restart starts replica i again if it is down.
func (c *cluster) restart(i int) error {
	if c.running(i) {
		return nil
	}
	c.mu.Lock()
	c.procs[i] = nil
	c.mu.Unlock()
	return c.start(i)
}

// pause SIGSTOPs replica i's agent (not its plugin) and waits until the
// kernel reports it stopped.
func (c *cluster) pause(i int) error {
	p := c.proc(i)
	if p == nil {
		return fmt.Errorf("r%d is not running", i)
	}
	c.note(i, "SIGSTOP")
	p.expected.Store(true) // a stopped process may still be killed by cleanup
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	c.mu.Lock()
	c.paused[i] = true
	c.mu.Unlock()
	return waitFor(10*time.Second, func() bool { return procState(p.pid) == "T" || !c.running(i) },
		"r%d (pid %d) stopped after SIGSTOP", i, p.pid)
}

// resume SIGCONTs replica i if it is paused.
func (c *cluster) resume(i int) error {
	c.mu.Lock()
	p, paused := c.procs[i], c.paused[i]
	c.paused[i] = false
	c.mu.Unlock()
	if p == nil || !paused {
		return nil
	}
	c.note(i, "SIGCONT")
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return err
	}
	p.expected.Store(false)
	select {
	case <-p.done: // it died while stopped: report it
		p.expected.Store(false)
		c.mu.Lock()
		c.problems = append(c.problems, fmt.Sprintf("replica r%d (pid %d) exited while stopped: %v", i, p.pid, p.err))
		c.mu.Unlock()
	default:
	}
	return nil
}

// killPlugin SIGKILLs the state machine plugin process of replica i, which
// must be running and not paused. It reports false if the replica had no
// plugin process at that moment (it is restarting one).
func (c *cluster) killPlugin(i int) (bool, int, error) {
	p := c.proc(i)
	if p == nil {
		return false, 0, fmt.Errorf("r%d is not running", i)
	}
	kids := children(p.pid)
	if len(kids) == 0 {
		return false, 0, nil
	}
	c.note(i, "SIGKILL of the plugin process %d", kids[0])
	if err := syscall.Kill(kids[0], syscall.SIGKILL); err != nil {
		return false, 0, err
	}
	return true, kids[0], nil
}

// killAll SIGKILLs every agent (on interrupt).
func (c *cluster) killAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p != nil {
			p.expected.Store(true)
			p.cmd.Process.Signal(syscall.SIGKILL)
		}
	}
}

// stopAll resumes and stops every agent with SIGTERM, SIGKILL after 15s.
func (c *cluster) stopAll() {
	for i := 0; i < c.n; i++ {
		c.resume(i)
	}
	c.mu.Lock()
	procs := append([]*proc(nil), c.procs...)
	c.mu.Unlock()
	for _, p := range procs {
		if p != nil {
			p.expected.Store(true)
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for i, p := range procs {
		if p == nil {
			continue
		}
		select {
		case <-p.done:
			if p.err != nil {
				c.t.Logf("r%d exited after SIGTERM with %v", i, p.err)
			}
		case <-time.After(15 * time.Second):
			c.t.Logf("r%d did not stop within 15s of SIGTERM; SIGKILL", i)
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	}
}

// takeProblems returns and clears the replicas' unexpected exits.
func (c *cluster) takeProblems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.problems
	c.problems = nil
	return out
}

// newClient returns a client of the replicas at addrs.
func (c *cluster) newClient(addrs []string) *client.Client {
	c.t.Helper()
	cl, err := client.New(client.Config{Addrs: addrs, DialTimeout: time.Second, AttemptTimeout: attemptTimeout})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// waitServing waits until every replica answers a read of a key outside
// the tested ones.
func (c *cluster) waitServing(within time.Duration) error {
	deadline := time.Now().Add(within)
	for i, addr := range c.addrs {
		cl, err := client.New(client.Config{Addrs: []string{addr}, DialTimeout: time.Second})
		if err != nil {
			return err
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err = cl.Propose(ctx, client.Read, "ready", nil)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				return fmt.Errorf("replica r%d at %s not serving after %v: %v", i, addr, within, err)
			}
		}
		cl.Close()
	}
	return nil
}

// children returns the pids of the processes whose parent is pid.
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces: split after ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			out = append(out, child)
		}
	}
	return out
}

// procState returns the state letter of process pid ("" if it is gone).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) == 0 {
		return ""
	}
	return fields[0]
}

// killPid SIGKILLs pid, waking it first if it is stopped.
func killPid(pid int) {
	syscall.Kill(pid, syscall.SIGKILL)
	syscall.Kill(pid, syscall.SIGCONT)
}

// waitFor polls cond until it holds or within has passed.
func waitFor(within time.Duration, cond func() bool, format string, args ...any) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out waiting until " + fmt.Sprintf(format, args...))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// lastWords returns what explains a replica's exit from the end of its
// log: a panic and its first frames in this module, or the last lines.
func lastWords(log string) string {
	b, err := os.ReadFile(log)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	start := max(0, len(lines)-3)
	for i := len(lines) - 1; i >= 0 && !strings.HasPrefix(lines[i], "==== chaos"); i-- {
		if strings.HasPrefix(lines[i], "panic:") {
			start = i
			break
		}
	}
	// A panic's frames come in pairs, a function then its file: keep
	// this module's.
	var out []string
	ours := false
	for _, l := range lines[start:] {
		paren := strings.IndexByte(l, '(')
		frame := paren > 0 && strings.HasSuffix(l, ")") && !strings.Contains(l[:paren], " ")
		switch {
		case len(out) == 12, l == "", strings.HasPrefix(l, "goroutine "):
		case strings.HasPrefix(l, "\t"):
			if ours {
				out = append(out, "\t"+l)
			}
		case frame:
			if ours = strings.HasPrefix(l, "github.com/epaxosd/"); ours {
				out = append(out, "\t"+l)
			}
		default:
			ours = false
			out = append(out, "\t"+l)
		}
	}
	return strings.Join(out, "\n")
}
