// Package raftkv is a baseline for epaxosd's benchmarks: a key-value store
// replicated with Raft (github.com/hashicorp/raft) that serves the same
// gRPC Client service as epaxosd (proto/epaxos.proto) with the same
// semantics as epaxosd's kv plugin, so that `epaxosd bench` and the Go
// client drive either one unchanged.
//
// It lives in its own Go module so that epaxosd does not depend on Raft.
//
// # Semantics
//
// Every command, reads included, is a Raft log entry (a marshalled
// ProposeRequest) applied by the FSM once committed, so reads are
// linearizable the way epaxosd's are (they go through consensus); there is
// no lease or ReadIndex shortcut. The FSM dedupes retries by (client_id,
// seq) as epaxosd does (see FSM).
//
// Only the leader appends to the log. A node that is not the leader
// forwards the request, unchanged, to the leader's client address over
// gRPC (one extra hop), so clients spread over all nodes, as the benchmark
// spreads them, all work. A forwarded request is marked (metadata
// "raftkv-forwarded"), and a node that receives a forwarded request while
// not the leader does not forward it again: it answers Unavailable with the
// leader it knows, and the Go client fails over and retries with the same
// (client_id, seq). With no known leader a node answers Unavailable too.
//
// # Raft settings
//
// hashicorp/raft's defaults, except MaxAppendEntries = 512 (default 64:
// more entries per AppendEntries RPC and per log-store write) and
// BatchApplyCh = true (the apply channel is buffered to MaxAppendEntries,
// so the leader takes every pending Apply at once and writes them to the log
// store in one batch: one bolt transaction and one fsync, that is group
// commit). The FSM implements raft.BatchingFSM. Snapshots go to a file
// snapshot store in the data directory (2 retained).
//
// # Stores
//
// "bolt": github.com/hashicorp/raft-boltdb/v2 (bbolt) as log and stable
// store, with fsync on (NoSync false), behind a raft.LogCache of the last
// 1024 entries. "mem": raft.NewInmemStore, nothing durable but snapshots; a
// restarted mem node has lost its log and its vote, which is unsafe:
// restart a mem cluster from empty data directories only.
//
// There is no TLS: this is for local benchmarks.
//
// # Emulated wide-area network
//
// Config.Delay gives a one-way delay to each peer, which the node applies
// to both directions of the connections it dials (see delay.go): Raft's,
// and the one over which it forwards client requests to the leader. Clients
// of a node are not delayed. To put the leader at one site, bootstrap the
// node there (the others have no configuration until it replicates one, so
// it becomes the first leader) and wait for it with WaitLeader.
package raftkv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// Settings of the Raft library that differ from its defaults.
const (
	MaxAppendEntries = 512
	BatchApplyCh     = true
	LogCacheSize     = 1024
	SnapshotsRetain  = 2
)

// Limits on a client request, as epaxosd's (daemon/client_service.go).
const (
	MaxKeyBytes   = 4 << 10
	MaxValueBytes = 1 << 20
)

// forwardedKey marks a request that a follower forwarded to the leader.
const forwardedKey = "raftkv-forwarded"

// applyEnqueueTimeout bounds the wait for room in Raft's apply queue.
const applyEnqueueTimeout = 10 * time.Second

// Peer is one member of the cluster.
type Peer struct {
	ID         string // Raft server id
	RaftAddr   string // host:port of its Raft transport
	ClientAddr string // host:port of its Client gRPC service
}

// ParsePeers parses "ID=RAFT_ADDR/CLIENT_ADDR,..." such as
// "n1=127.0.0.1:8001/127.0.0.1:9001,n2=127.0.0.1:8002/127.0.0.1:9002".
func ParsePeers(s string) ([]Peer, error) {
	var peers []Peer
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addrs, ok := strings.Cut(part, "=")
		raftAddr, clientAddr, ok2 := strings.Cut(addrs, "/")
		if !ok || !ok2 || id == "" || raftAddr == "" || clientAddr == "" {
			return nil, fmt.Errorf("peer %q: want ID=RAFT_ADDR/CLIENT_ADDR", part)
		}
		if seen[id] {
			return nil, fmt.Errorf("peer id %q given twice", id)
		}
		seen[id] = true
		peers = append(peers, Peer{ID: id, RaftAddr: raftAddr, ClientAddr: clientAddr})
	}
	if len(peers) == 0 {
		return nil, errors.New("no peers")
	}
	return peers, nil
}

// Config configures a Node.
type Config struct {
	ID    string // this node's id; must be one of Peers
	Peers []Peer // the whole cluster, this node included

	// RaftListener and ClientListener, if set, are used instead of
	// listening on this node's addresses in Peers (tests listen on port 0
	// first). The node closes them.
	RaftListener   net.Listener
	ClientListener net.Listener

	DataDir   string // snapshots, and the bolt store's raft.db
	Store     string // "bolt" or "mem"
	Bootstrap bool   // bootstrap the cluster from Peers if this node has no state

	// Delay is for benchmarks: an emulated one-way network delay to each
	// peer, by id (see delay.go). Missing and zero entries mean none; an
	// entry for this node is ignored.
	Delay map[string]time.Duration

	Logger hclog.Logger // nil: discard
	// Tune, if set, adjusts the Raft configuration (tests shorten timeouts).
	Tune func(*raft.Config)
}

// Node is one running raftkv server.
type Node struct {
	cfg    Config
	self   Peer
	log    hclog.Logger
	fsm    *FSM
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	bolt   *raftboltdb.BoltStore
	grpc   *grpc.Server
	client net.Listener
	byID   map[raft.ServerID]Peer
	served chan error

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // forwarding connections, by client address
}

// Start starts a node: its Raft instance and its Client service.
func Start(cfg Config) (n *Node, err error) {
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	n = &Node{cfg: cfg, log: log, fsm: NewFSM(), byID: make(map[raft.ServerID]Peer), conns: make(map[string]*grpc.ClientConn), served: make(chan error, 1)}
	closeListeners := func() {
		if cfg.RaftListener != nil {
			cfg.RaftListener.Close()
		}
		if cfg.ClientListener != nil {
			cfg.ClientListener.Close()
		}
	}
	found := false
	for _, p := range cfg.Peers {
		n.byID[raft.ServerID(p.ID)] = p
		if p.ID == cfg.ID {
			n.self, found = p, true
		}
	}
	if !found {
		closeListeners()
		return nil, fmt.Errorf("raftkv: id %q is not among the peers", cfg.ID)
	}
	if cfg.DataDir == "" {
		closeListeners()
		return nil, errors.New("raftkv: no data directory")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		closeListeners()
		return nil, fmt.Errorf("raftkv: %w", err)
	}
	node := n // the error returns below set n to nil
	defer func() {
		if err != nil {
			node.Close()
			closeListeners()
		}
	}()

	// Stores.
	var logs raft.LogStore
	var stable raft.StableStore
	switch cfg.Store {
	case "mem":
		s := raft.NewInmemStore()
		logs, stable = s, s
	case "bolt", "":
		bs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db"), NoSync: false})
		if err != nil {
			return nil, fmt.Errorf("raftkv: bolt store: %w", err)
		}
		n.bolt = bs
		logs, err = raft.NewLogCache(LogCacheSize, bs)
		if err != nil {
			return nil, fmt.Errorf("raftkv: log cache: %w", err)
		}
		stable = bs
	default:
		return nil, fmt.Errorf("raftkv: store must be bolt or mem, got %q", cfg.Store)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, SnapshotsRetain, log.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("raftkv: snapshot store: %w", err)
	}

	for id, d := range cfg.Delay {
		if _, ok := n.byID[raft.ServerID(id)]; !ok || d < 0 {
			return nil, fmt.Errorf("raftkv: delay %v to %q: want a peer's id and a delay of at least 0", d, id)
		}
	}

	// Transport.
	rl := cfg.RaftListener
	if rl == nil {
		if rl, err = net.Listen("tcp", n.self.RaftAddr); err != nil {
			return nil, fmt.Errorf("raftkv: raft listener: %w", err)
		}
	}
	adv, err := net.ResolveTCPAddr("tcp", n.self.RaftAddr)
	if err != nil {
		rl.Close()
		return nil, fmt.Errorf("raftkv: raft address %q: %w", n.self.RaftAddr, err)
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{Listener: rl, advertise: adv, delay: n.delayTo},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  log.Named("transport"),
	})

	// Raft.
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = log.Named("raft")
	rc.MaxAppendEntries = MaxAppendEntries
	rc.BatchApplyCh = BatchApplyCh
	if cfg.Tune != nil {
		cfg.Tune(rc)
	}
	if cfg.Bootstrap {
		has, err := raft.HasExistingState(logs, stable, snaps)
		if err != nil {
			return nil, fmt.Errorf("raftkv: %w", err)
		}
		if !has {
			var servers []raft.Server
			for _, p := range cfg.Peers {
				servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
			}
			if err := raft.BootstrapCluster(rc, logs, stable, snaps, n.trans, raft.Configuration{Servers: servers}); err != nil {
				return nil, fmt.Errorf("raftkv: bootstrap: %w", err)
			}
		}
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, stable, snaps, n.trans); err != nil {
		return nil, fmt.Errorf("raftkv: %w", err)
	}

	// Client service.
	cl := cfg.ClientListener
	if cl == nil {
		if cl, err = net.Listen("tcp", n.self.ClientAddr); err != nil {
			return nil, fmt.Errorf("raftkv: client listener: %w", err)
		}
	}
	n.client = cl
	n.grpc = grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	epaxospb.RegisterClientServer(n.grpc, &service{n: n})
	go func() { n.served <- n.grpc.Serve(cl) }()
	return n, nil
}

// Close stops the node.
func (n *Node) Close() error {
	var errs []error
	if n.grpc != nil {
		n.grpc.Stop()
	}
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.bolt != nil {
		errs = append(errs, n.bolt.Close())
	}
	n.mu.Lock()
	for _, c := range n.conns {
		c.Close()
	}
	n.conns = map[string]*grpc.ClientConn{}
	n.mu.Unlock()
	return errors.Join(errs...)
}

// IsLeader reports whether this node is the Raft leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Raft returns the node's Raft instance.
func (n *Node) Raft() *raft.Raft { return n.raft }

// FSM returns the node's copy of the store.
func (n *Node) FSM() *FSM { return n.fsm }

// ClientAddr returns the address the Client service listens on.
func (n *Node) ClientAddr() string { return n.client.Addr().String() }

// Served returns a channel that receives the gRPC server's error if it stops.
func (n *Node) Served() <-chan error { return n.served }

// streamLayer is raft's network layer over a listener, advertising the
// address in the cluster configuration. It delays the connections it dials
// by delay(address) (see delay.go).
type streamLayer struct {
	net.Listener
	advertise net.Addr
	delay     func(addr string, raftAddr bool) time.Duration
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	if d := s.delay(string(address), true); d > 0 {
		return newDelayConn(c, d), nil
	}
	return c, nil
}

// delayTo returns the emulated delay to the peer at addr, a Raft address
// or, if not raftAddr, a client address.
func (n *Node) delayTo(addr string, raftAddr bool) time.Duration {
	for _, p := range n.cfg.Peers {
		if p.ID != n.self.ID && (raftAddr && p.RaftAddr == addr || !raftAddr && p.ClientAddr == addr) {
			return n.cfg.Delay[p.ID]
		}
	}
	return 0
}

// WaitLeader waits until this node is the Raft leader, or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) error {
	for n.raft.State() != raft.Leader {
		select {
		case <-n.raft.LeaderCh():
		case <-ctx.Done():
			return fmt.Errorf("raftkv %s: not the leader: %w", n.self.ID, ctx.Err())
		}
	}
	return nil
}

// service serves epaxospb.Client.
type service struct {
	epaxospb.UnimplementedClientServer
	n *Node
}

// Propose applies a command through the Raft log on the leader, or forwards
// it there.
func (s *service) Propose(ctx context.Context, req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
	if err := validate(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	r := s.n.raft
	if r.State() != raft.Leader {
		return s.forward(ctx, req)
	}
	data, err := proto.Marshal(req)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	f := r.Apply(data, applyEnqueueTimeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			return s.forward(ctx, req)
		case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown),
			errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			// The entry may or may not commit; the client retries with
			// the same (client_id, seq), which the FSM dedupes.
			return nil, status.Errorf(codes.Unavailable, "raftkv %s: %v", s.n.self.ID, err)
		}
		return nil, status.Errorf(codes.Internal, "raftkv %s: %v", s.n.self.ID, err)
	}
	res, ok := f.Response().(Result)
	if !ok {
		return nil, status.Errorf(codes.Internal, "raftkv %s: unexpected FSM response %T", s.n.self.ID, f.Response())
	}
	if res.Stale {
		return nil, staleError(req)
	}
	return &epaxospb.ProposeResponse{Value: res.Value, Error: res.Err}, nil
}

// forward sends req to the leader, unless it was forwarded already.
func (s *service) forward(ctx context.Context, req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
	_, id := s.n.raft.LeaderWithID()
	leader, known := s.n.byID[id]
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(forwardedKey)) > 0 {
		if known {
			return nil, status.Errorf(codes.Unavailable, "raftkv %s: not the leader; the leader is %s at %s", s.n.self.ID, leader.ID, leader.ClientAddr)
		}
		return nil, status.Errorf(codes.Unavailable, "raftkv %s: not the leader; no leader known", s.n.self.ID)
	}
	if !known || leader.ID == s.n.self.ID {
		return nil, status.Errorf(codes.Unavailable, "raftkv %s: no leader known", s.n.self.ID)
	}
	conn, err := s.n.conn(leader.ClientAddr)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "raftkv %s: forward to %s: %v", s.n.self.ID, leader.ClientAddr, err)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, forwardedKey, s.n.self.ID)
	return epaxospb.NewClientClient(conn).Propose(ctx, req)
}

// conn returns the forwarding connection to a client address.
func (n *Node) conn(addr string) (*grpc.ClientConn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.conns[addr]; c != nil {
		return c, nil
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20))}
	if d := n.delayTo(addr, false); d > 0 {
		// A forwarded request crosses the emulated network both ways.
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, target string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", target)
			if err != nil {
				return nil, err
			}
			return newDelayConn(c, d), nil
		}))
	}
	c, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	n.conns[addr] = c
	return c, nil
}

// validate applies epaxosd's checks of a client request
// (daemon/client_service.go), except that client_id and seq may be 0: a
// request without them is not deduplicated.
func validate(req *epaxospb.ProposeRequest) error {
	switch req.GetAccess() {
	case epaxospb.Access_READ, epaxospb.Access_WRITE, epaxospb.Access_DELETE:
	default:
		return fmt.Errorf("access must be READ, WRITE or DELETE, got %v", req.GetAccess())
	}
	switch {
	case len(req.GetKey()) == 0:
		return errors.New("key must not be empty")
	case len(req.GetKey()) > MaxKeyBytes:
		return fmt.Errorf("key of %d bytes exceeds the limit of %d", len(req.GetKey()), MaxKeyBytes)
	case len(req.GetValue()) > MaxValueBytes:
		return fmt.Errorf("value of %d bytes exceeds the limit of %d", len(req.GetValue()), MaxValueBytes)
	case req.GetAccess() != epaxospb.Access_WRITE && len(req.GetValue()) > 0:
		return fmt.Errorf("%v takes no value", req.GetAccess())
	}
	return nil
}
