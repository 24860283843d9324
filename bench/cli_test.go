package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"

	"github.com/epaxosd/epaxosd/client"
	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// kvServer is a one-process stand-in for a replica: a map behind the
// Client service.
type kvServer struct {
	epaxospb.UnimplementedClientServer
	mu    sync.Mutex
	data  map[string][]byte
	calls atomic.Int64
}

func (s *kvServer) Propose(ctx context.Context, req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch req.GetAccess() {
	case epaxospb.Access_READ:
		return &epaxospb.ProposeResponse{Value: s.data[string(req.GetKey())]}, nil
	case epaxospb.Access_WRITE:
		s.data[string(req.GetKey())] = req.GetValue()
	case epaxospb.Access_DELETE:
		delete(s.data, string(req.GetKey()))
	}
	return &epaxospb.ProposeResponse{}, nil
}

func startKVServer(t *testing.T) (*kvServer, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kv := &kvServer{data: make(map[string][]byte)}
	srv := grpc.NewServer()
	epaxospb.RegisterClientServer(srv, kv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return kv, lis.Addr().String()
}

func TestCommandRuns(t *testing.T) {
	s1, a1 := startKVServer(t)
	s2, a2 := startKVServer(t)
	out := filepath.Join(t.TempDir(), "stats.jsonl")
	var stdout, stderr bytes.Buffer
	rc := Command(context.Background(), []string{
		"-addr", a1 + "," + a2, "-ops", "400", "-warmup", "0", "-clients", "4",
		"-reads", "50", "-conflict", "10", "-out", out,
	}, &stdout, &stderr)
	if rc != 0 {
		t.Fatalf("exit %d, stderr:\n%s", rc, stderr.String())
	}
	if !summaryLine.MatchString(strings.TrimSpace(stdout.String())) {
		t.Fatalf("stdout %q is not one summary line", stdout.String())
	}
	if !strings.HasSuffix(strings.TrimSpace(stdout.String()), " errors=0") {
		t.Fatalf("errors in %q; stderr:\n%s", stdout.String(), stderr.String())
	}
	if s1.calls.Load() == 0 || s2.calls.Load() == 0 {
		t.Fatalf("clients not spread over the replicas: %d and %d requests", s1.calls.Load(), s2.calls.Load())
	}
	if got := s1.calls.Load() + s2.calls.Load(); got != 400 {
		t.Fatalf("%d requests, want 400", got)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var st IntervalStats
		if err := json.Unmarshal([]byte(l), &st); err != nil {
			t.Fatalf("-out line %q: %v", l, err)
		}
		total = st.TotalOps
	}
	if total != 400 {
		t.Fatalf("-out ends with total_ops %d, want 400:\n%s", total, b)
	}
	if !strings.Contains(stderr.String(), "elapsed=") {
		t.Fatalf("no progress line on stderr:\n%s", stderr.String())
	}
}

func TestCommandUsageErrors(t *testing.T) {
	const modeErr = "epaxosd bench: specify either fixed duration or maximum operations benchmark mode\n"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-addr", "x:1", "-duration", "1s", "-ops", "5"}, modeErr},
		{[]string{"-addr", "x:1"}, modeErr},
		{[]string{"-duration", "1s"}, "-addr is required"},
		{[]string{"-addr", "x:1", "-ops", "5", "-rate", "100", "-clients", "3"}, "not both"},
		{[]string{"-addr", "x:1", "-ops", "5", "-backlog", "3"}, "open loop"},
		{[]string{"-addr", "x:1", "-ops", "5", "-conflict", "120"}, "conflict"},
		{[]string{"-addr", "x:1", "-ops", "5", "-plugin", "sql"}, "plugin"},
		{[]string{"-addr", "x:1", "-ops", "5", "-ca", "ca.pem"}, "mutual TLS needs"},
		{[]string{"-addr", "x:1", "-ops", "5", "extra"}, "unexpected argument"},
	} {
		var stdout, stderr bytes.Buffer
		rc := Command(context.Background(), tc.args, &stdout, &stderr)
		if rc != 2 || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, rc, stdout.String(), stderr.String(), tc.want)
		}
	}
}

func TestNewClientsRotates(t *testing.T) {
	// Each client prefers a different replica: send one request through
	// each and see that it lands on that client's first address.
	s1, a1 := startKVServer(t)
	s2, a2 := startKVServer(t)
	s3, a3 := startKVServer(t)
	cfg := client.Config{Addrs: []string{a1, a2, a3}}
	cls, err := NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range cls {
			c.Close()
		}
	}()
	servers := []*kvServer{s1, s2, s3}
	for i, c := range cls {
		before := servers[i].calls.Load()
		if _, err := c.Propose(context.Background(), client.Read, "k", nil); err != nil {
			t.Fatal(err)
		}
		if servers[i].calls.Load() != before+1 {
			t.Fatalf("client %d did not use replica %d first", i, i)
		}
	}
}

// -key-prefix puts every key, private and hot, under the prefix, so that
// concurrent bench processes (one per emulated site) keep their private
// keys apart.
func TestCommandKeyPrefixNamesEveryKey(t *testing.T) {
	s, a := startKVServer(t)
	var stdout, stderr bytes.Buffer
	rc := Command(context.Background(), []string{
		"-addr", a, "-ops", "200", "-warmup", "0", "-clients", "4", "-conflict", "30", "-key-prefix", "site-eu",
	}, &stdout, &stderr)
	if rc != 0 {
		t.Fatalf("exit %d, stderr:\n%s", rc, stderr.String())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	hot := false
	for k := range s.data {
		if !strings.HasPrefix(k, "site-eu/") {
			t.Fatalf("key %q outside the prefix site-eu/", k)
		}
		hot = hot || k == "site-eu/hot"
	}
	if len(s.data) == 0 || !hot {
		t.Fatalf("keys %v: want private keys and site-eu/hot", s.data)
	}
}
