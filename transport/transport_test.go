package transport

import (
	"bytes"
	"context"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/replica"
)

const testCluster = "test-cluster"

// logBuffer collects a node's logs; it is safe for concurrent use and can be
// read after the goroutines that write it are gone.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) Count(s string) int { return strings.Count(b.String(), s) }

// node is one replica's transport served by a real gRPC server.
type node struct {
	tr   *Transport
	srv  *grpc.Server
	logs *logBuffer

	mu  sync.Mutex
	got []replica.Message // drained from the inbox
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

// startNode creates a transport for self, serves it on lis (if not nil),
// drains its inbox into n.got and starts its senders. Everything stops at
// the end of the test.
func startNode(t *testing.T, self replica.ReplicaID, cluster string, peers map[replica.ReplicaID]string, lis net.Listener) *node {
	t.Helper()
	return startNodeWith(t, Config{Self: self, Peers: peers, Cluster: cluster}, lis)
}

// startNodeWith is startNode for a transport configured by cfg (its
// QueueSize and Logger are set here) and a server with the extra options.
func startNodeWith(t *testing.T, cfg Config, lis net.Listener, serverOpts ...grpc.ServerOption) *node {
	t.Helper()
	self := cfg.Self
	n := &node{logs: &logBuffer{}}
	cfg.QueueSize = 4096
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: n.logs, Level: hclog.Debug})
	n.tr = New(cfg)
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case m := <-n.tr.Inbox():
				n.mu.Lock()
				n.got = append(n.got, m)
				n.mu.Unlock()
			case <-stop:
				return
			}
		}
	}()
	if lis != nil {
		n.serve(lis, serverOpts...)
	}
	n.tr.Start()
	t.Cleanup(func() {
		n.tr.Close()
		if n.srv != nil {
			n.srv.Stop()
		}
		close(stop)
		<-drained
		if t.Failed() {
			t.Logf("logs of replica %d:\n%s", self, n.logs)
		}
	})
	return n
}

func (n *node) serve(lis net.Listener, opts ...grpc.ServerOption) {
	n.srv = grpc.NewServer(append(ServerOptions(), opts...)...)
	n.tr.Register(n.srv)
	go n.srv.Serve(lis)
}

func (n *node) received() []replica.Message {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]replica.Message(nil), n.got...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func msg(from, to replica.ReplicaID, slot uint64) replica.Message {
	return replica.Message{
		Type:     replica.MsgPreAccept,
		From:     from,
		To:       to,
		Instance: replica.InstanceID{Replica: from, Slot: slot},
		Command: &replica.Payload{Commands: []replica.Command{
			{ClientID: uint64(from), Seq: slot, Access: replica.Write, Key: "k", Value: []byte("v")},
		}},
		Deps: replica.NewDeps(replica.InstanceID{Replica: to, Slot: slot}),
	}
}

// fromSender returns the messages in ms sent by from, in arrival order.
func fromSender(ms []replica.Message, from replica.ReplicaID) []replica.Message {
	var out []replica.Message
	for _, m := range ms {
		if m.From == from {
			out = append(out, m)
		}
	}
	return out
}

func TestThreeReplicasExchangeInOrder(t *testing.T) {
	const n = 2000
	lis := []net.Listener{listen(t), listen(t), listen(t)}
	nodes := make([]*node, 3)
	for i := range nodes {
		peers := map[replica.ReplicaID]string{}
		for j := range lis {
			if j != i {
				peers[replica.ReplicaID(j)] = lis[j].Addr().String()
			}
		}
		nodes[i] = startNode(t, replica.ReplicaID(i), testCluster, peers, lis[i])
	}
	// Each replica sends n messages to each other one, in Send calls of
	// varying size so that envelopes are packed differently.
	for i, nd := range nodes {
		for slot := uint64(1); slot <= n; {
			var batch []replica.Message
			for k := 0; k < int(slot%7)+1 && slot <= n; k++ {
				for j := range nodes {
					if j != i {
						batch = append(batch, msg(replica.ReplicaID(i), replica.ReplicaID(j), slot))
					}
				}
				slot++
			}
			nd.tr.Send(batch)
		}
	}
	for i, nd := range nodes {
		waitFor(t, "all messages", func() bool { return len(nd.received()) == 2*n })
		got := nd.received()
		for j := range nodes {
			if j == i {
				continue
			}
			ms := fromSender(got, replica.ReplicaID(j))
			if len(ms) != n {
				t.Fatalf("replica %d got %d messages from %d, want %d", i, len(ms), j, n)
			}
			for k, m := range ms {
				want := msg(replica.ReplicaID(j), replica.ReplicaID(i), uint64(k+1))
				if !reflect.DeepEqual(m, want) {
					t.Fatalf("replica %d: message %d from %d:\n got %v\nwant %v", i, k, j, m, want)
				}
			}
		}
		st := nd.tr.Stats()
		if st.Sent != 2*n || st.Received != 2*n || st.Dropped != 0 || st.Rejected != 0 || st.Unroutable != 0 {
			t.Errorf("replica %d stats %+v", i, st)
		}
	}
}

func TestLatePeerIsConnectedAfterBackoff(t *testing.T) {
	// Reserve an address for replica 1, which is down at first.
	l := listen(t)
	addr := l.Addr().String()
	l.Close()

	a := startNode(t, 0, testCluster, map[replica.ReplicaID]string{1: addr}, listen(t))
	waitFor(t, "the outage warning", func() bool { return a.logs.Count("cannot connect to peer") == 1 })
	if got := a.logs.Count("connecting to peer failed"); got != warnAfter {
		t.Errorf("%d failed attempts logged at debug, want the first %d", got, warnAfter)
	}

	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on reserved address %s again: %v", addr, err)
	}
	b := startNode(t, 1, testCluster, map[replica.ReplicaID]string{0: "127.0.0.1:1"}, lis)

	// Retry a probe until one is delivered: then the stream is up.
	probe := replica.Message{Type: replica.MsgWaiting, From: 0, To: 1, Instance: replica.InstanceID{Replica: 0, Slot: 1}}
	deadline := time.Now().Add(10 * time.Second)
	for len(b.received()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no probe delivered after the peer came up")
		}
		a.tr.Send([]replica.Message{probe})
		time.Sleep(20 * time.Millisecond)
	}
	// Everything sent from now on arrives, in order.
	const n = 500
	for slot := uint64(1); slot <= n; slot++ {
		a.tr.Send([]replica.Message{msg(0, 1, slot)})
	}
	var real []replica.Message
	waitFor(t, "messages after reconnection", func() bool {
		real = real[:0]
		for _, m := range b.received() {
			if m.Type == replica.MsgPreAccept {
				real = append(real, m)
			}
		}
		return len(real) == n
	})
	for k, m := range real {
		if m.Instance.Slot != uint64(k+1) {
			t.Fatalf("message %d has slot %d: out of order", k, m.Instance.Slot)
		}
	}
	if a.logs.Count("reconnected to peer") != 1 || a.logs.Count("cannot connect to peer") != 1 {
		t.Errorf("want one outage warning and one reconnection, logs:\n%s", a.logs)
	}
	if !a.tr.Stats().Peers[1].Connected {
		t.Error("peer 1 not reported connected")
	}
}

// rawStream opens a Peer stream to addr without a transport, as a
// misbehaving or misconfigured peer would.
func rawStream(t *testing.T, addr string) epaxospb.Peer_StreamClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	s, err := epaxospb.NewPeerClient(conn).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWrongClusterRefused(t *testing.T) {
	lis := listen(t)
	b := startNode(t, 1, testCluster, map[replica.ReplicaID]string{0: "127.0.0.1:1"}, lis)

	t.Run("envelope", func(t *testing.T) {
		s := rawStream(t, lis.Addr().String())
		if err := s.Send(&epaxospb.Envelope{Cluster: "other", From: 0, Messages: []*epaxospb.Message{MessageToProto(msg(0, 1, 1))}}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Recv()
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `"other"`) {
			t.Fatalf("got %v, want PermissionDenied naming the cluster", err)
		}
		waitFor(t, "the rejection to be counted", func() bool { return b.tr.Stats().Rejected == 1 })
	})

	t.Run("transport", func(t *testing.T) {
		a := startNode(t, 0, "other", map[replica.ReplicaID]string{1: lis.Addr().String()}, nil)
		a.tr.Send([]replica.Message{msg(0, 1, 1)})
		waitFor(t, "the sender to see the refusal", func() bool {
			return strings.Contains(a.logs.String(), "PermissionDenied")
		})
		waitFor(t, "the outage warning", func() bool { return a.logs.Count("cannot connect to peer") == 1 })
		if a.tr.Stats().Peers[1].Connected {
			t.Error("refused peer reported connected")
		}
		if st := a.tr.Stats(); st.Sent != 0 {
			t.Errorf("sent %d messages to a refusing peer", st.Sent)
		}
	})
	if got := b.received(); len(got) != 0 {
		t.Fatalf("received %v from another cluster", got)
	}
	if !strings.Contains(b.logs.String(), "another cluster") {
		t.Errorf("refusal not logged:\n%s", b.logs)
	}
}

func TestForgedAndMisaddressedMessagesRejected(t *testing.T) {
	lis := listen(t)
	b := startNode(t, 1, testCluster, map[replica.ReplicaID]string{0: "127.0.0.1:1", 2: "127.0.0.1:1"}, lis)
	s := rawStream(t, lis.Addr().String())

	good1, good2 := msg(0, 1, 1), msg(0, 1, 2)
	envs := []*epaxospb.Envelope{
		{Cluster: testCluster, From: 0, Messages: []*epaxospb.Message{
			MessageToProto(msg(2, 1, 9)), // forged: From 2 in replica 0's envelope
			MessageToProto(good1),
			MessageToProto(msg(0, 2, 9)), // not addressed to replica 1
			{Type: 42, From: 0, To: 1},   // malformed
			MessageToProto(msg(0, 1, 0)), // slot 0
		}},
		{Cluster: testCluster, From: 1, Messages: []*epaxospb.Message{MessageToProto(msg(1, 1, 9))}}, // from self
		{Cluster: testCluster, From: 7, Messages: []*epaxospb.Message{MessageToProto(msg(7, 1, 9))}}, // unknown replica
		{Cluster: testCluster, From: 0}, // empty envelope: accepted, carries nothing
		{Cluster: testCluster, From: 0, Messages: []*epaxospb.Message{MessageToProto(good2)}},
	}
	for _, env := range envs {
		if err := s.Send(env); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the last good message", func() bool { return len(b.received()) == 2 })
	if got, want := b.received(), []replica.Message{good1, good2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("received %v, want %v", got, want)
	}
	st := b.tr.Stats()
	if st.Rejected != 6 || st.Received != 2 {
		t.Fatalf("stats %+v, want 6 rejected and 2 received", st)
	}
	// The stream survives bad messages.
	if err := s.Send(&epaxospb.Envelope{Cluster: testCluster, From: 0, Messages: []*epaxospb.Message{MessageToProto(msg(0, 1, 3))}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a message after the rejections", func() bool { return len(b.received()) == 3 })
	// Warnings are rate-limited: one per kind within logEvery.
	if n := b.logs.Count("rejecting message from peer"); n != 1 {
		t.Errorf("%d rejection warnings for replica 0, want 1 (rate-limited)", n)
	}
	if n := b.logs.Count("rejecting envelope from a replica that is not a peer"); n != 1 {
		t.Errorf("%d unknown-sender warnings, want 1 (rate-limited)", n)
	}
}

func TestSendDropsWhenQueueFull(t *testing.T) {
	tr := New(Config{Self: 0, Peers: map[replica.ReplicaID]string{1: "127.0.0.1:1"}, Cluster: testCluster, QueueSize: 4})
	defer tr.Close()
	// Not started: nothing drains the queue.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for slot := uint64(1); slot <= 10; slot++ {
			tr.Send([]replica.Message{msg(0, 1, slot)})
		}
		tr.Send([]replica.Message{msg(0, 0, 1), msg(0, 9, 1)}) // self, unknown
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Send blocked")
	}
	st := tr.Stats()
	if st.Dropped != 6 || st.Unroutable != 2 || st.Peers[1].Queued != 4 || st.Peers[1].Dropped != 6 {
		t.Fatalf("stats %+v", st)
	}
	tr.Close()
	tr.Close() // idempotent
	tr.Start() // no effect after Close
	tr.Send([]replica.Message{msg(0, 1, 11)})
	if st := tr.Stats(); st.Dropped != 7 {
		t.Fatalf("after Close: %+v", st)
	}
}

// stuckPeer accepts streams and never reads from them.
type stuckPeer struct {
	epaxospb.UnimplementedPeerServer
}

func (stuckPeer) Stream(s epaxospb.Peer_StreamServer) error {
	if err := s.SendHeader(nil); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

func TestSendNeverBlocksOnStuckPeer(t *testing.T) {
	lis := listen(t)
	srv := grpc.NewServer(ServerOptions()...)
	epaxospb.RegisterPeerServer(srv, stuckPeer{})
	go srv.Serve(lis)
	defer srv.Stop()

	tr := New(Config{Self: 0, Peers: map[replica.ReplicaID]string{1: lis.Addr().String()}, Cluster: testCluster, QueueSize: 64})
	tr.Start()
	defer tr.Close()
	waitFor(t, "connection", func() bool { return tr.Stats().Peers[1].Connected })

	big := msg(0, 1, 1)
	big.Command.Commands[0].Value = make([]byte, 32<<10)
	batch := make([]replica.Message, 64)
	for i := range batch {
		batch[i] = big
	}
	// Flow control stops the stream after a few windows; from then on the
	// queue fills and Send drops instead of blocking.
	waitFor(t, "drops", func() bool {
		tr.Send(batch)
		return tr.Stats().Dropped > 0
	})
}

func TestBackoffDelay(t *testing.T) {
	for n := 1; n < 100; n++ {
		want := min(minBackoff<<min(n-1, 10), maxBackoff)
		for range 20 {
			d := backoffDelay(n)
			if d < want/2 || d > want {
				t.Fatalf("backoffDelay(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
}
