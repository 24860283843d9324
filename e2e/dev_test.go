package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/epaxosd/epaxosd/client"
)

// consecutivePorts finds n consecutive free loopback ports.
func consecutivePorts(t *testing.T, n int) int {
	t.Helper()
	for base := 21000 + (time.Now().Nanosecond()/1000)%20000; base < 65000; base += n {
		var ls []net.Listener
		ok := true
		for i := 0; i < n && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// `epaxosd dev -replicas 5 -plugin counter -port N` announces a dev cluster
// that keeps no data and its client addresses, serves on all of them, and
// stops cleanly (plugins included) on SIGINT.
func TestE2E_DevClusterServesOnAnnouncedAddressesAndStopsOnInterrupt(t *testing.T) {
	port := consecutivePorts(t, 5)
	cmd := exec.Command(epaxosd, "dev", "-replicas", "5", "-plugin", "counter", "-port", fmt.Sprint(port))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	banner := bufio.NewReader(stdout)
	var text strings.Builder
	var addrs []string
	for addrs == nil {
		line, err := banner.ReadString('\n')
		text.WriteString(line)
		if err != nil {
			t.Fatalf("banner ended early (%v):\n%s\nlogs:\n%s", err, text.String(), logs.String())
		}
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Client addresses:"); ok {
			addrs = strings.Split(strings.ReplaceAll(strings.TrimSpace(rest), " ", ""), ",")
		}
	}
	if !strings.Contains(text.String(), "dev cluster") || !strings.Contains(text.String(), "keeps no data") {
		t.Errorf("banner does not say it is a dev cluster that keeps no data:\n%s", text.String())
	}
	var want []string
	for i := 0; i < 5; i++ {
		want = append(want, fmt.Sprintf("127.0.0.1:%d", port+i))
	}
	if strings.Join(addrs, ",") != strings.Join(want, ",") {
		t.Fatalf("announced %v, want %v", addrs, want)
	}
	c := &cluster{t: t, addrs: addrs}
	c.waitReady()
	for i, addr := range addrs {
		if got := propose(t, c.client(addr), client.Write, "n", "2"); got != fmt.Sprint(2*(i+1)) {
			t.Errorf("increment through %s returned %s, want %d", addr, got, 2*(i+1))
		}
	}
	go io.Copy(io.Discard, banner)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev cluster exited with %v on SIGINT\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("dev cluster still running 15s after SIGINT\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), "plugin process exited"); n != 5 {
		t.Errorf("%d of 5 plugin processes reported exiting:\n%s", n, logs.String())
	}
}
