// Package transport carries EPaxos* messages between the replicas of one
// cluster over gRPC (the Peer service of proto/epaxos.proto).
//
// It owns the peer connections: one outbound client connection and one
// bidirectional Stream per peer, a bounded send queue per peer, batching of
// queued messages into Envelopes, reconnection with backoff, and the
// validation of everything peers send (codec.go). It knows nothing about the
// protocol beyond the shape of a message.
//
// For benchmarks and tests only, Config.PeerDelay emulates a wide-area
// network: every message to a peer waits out a fixed delay in the peer's
// queue before the sender writes it (see delay.go).
//
// It must never block the core: Send drops messages when a peer's queue is
// full or the peer is unreachable, and counts them. EPaxos* tolerates message
// loss; retransmission is the core's job. It must never buffer without bound,
// and nothing a peer sends may crash the replica: malformed, misaddressed or
// forged messages are counted, logged (rate-limited) and skipped.
//
// Streams are one-way. Replica A sends to B on the stream A opened with its
// own connection to B; B sends to A on the stream B opened to A. The server
// side of a stream only reads; responses on it are reserved for later flow
// control and are ignored by the sender today.
//
// The daemon must create its gRPC server with ServerOptions() (or at least
// grpc.MaxRecvMsgSize(MaxMessageBytes) and a keepalive enforcement policy
// that admits the clients' pings), then call Register before serving. With
// TLS, the server's credentials are the daemon's (mutual TLS, one port for
// peers and clients); Config.TLS dials peers with the matching client side,
// and the Peer service refuses a certificate that is not a replica's.
package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/tlsconfig"
)

const (
	// MaxMessageBytes is the largest gRPC message (one Envelope) the
	// transport sends or accepts. Senders pack envelopes below it; the daemon
	// must set grpc.MaxRecvMsgSize(MaxMessageBytes) on its server (see
	// ServerOptions), because gRPC's default of 4 MiB would refuse large
	// batches and end the stream.
	MaxMessageBytes = 64 << 20

	// DefaultQueueSize is the per-peer send queue length when
	// Config.QueueSize is 0.
	DefaultQueueSize = 1024

	// InboxSize is the capacity of the channel returned by Inbox.
	InboxSize = 4096

	// MaxBatch is the most messages packed into one Envelope.
	MaxBatch = 256

	// Reconnection backoff: doubling from minBackoff to maxBackoff, jittered.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second

	// handshakeTimeout bounds dialing plus the peer's acceptance of a new
	// stream (its response headers).
	handshakeTimeout = 5 * time.Second

	// warnAfter consecutive failed attempts, an outage is logged at warn.
	warnAfter = 3
	// outageReminder spaces the warnings repeated during a long outage.
	outageReminder = time.Minute
	// logEvery spaces rate-limited warnings about what peers send.
	logEvery = 10 * time.Second

	// Keepalive: ping an idle connection after keepaliveTime, give up on it
	// keepaliveTimeout later. gRPC clients never ping more often than 10s.
	keepaliveTime    = 10 * time.Second
	keepaliveTimeout = 5 * time.Second

	// Stream metadata: the sender's cluster and pid, checked when the stream
	// opens so that a misconfigured peer is refused before it sends anything.
	mdCluster = "epaxos-cluster"
	mdFrom    = "epaxos-from"

	// envelopeOverhead bounds the per-message framing inside an Envelope
	// (field tag and length prefix) plus slack.
	envelopeOverhead = 16
)

// Config configures a Transport.
type Config struct {
	// Self is this replica's pid.
	Self replica.ReplicaID
	// Peers maps every other replica's pid to its address (host:port). An
	// entry for Self is ignored.
	Peers map[replica.ReplicaID]string
	// Cluster identifies the replica set. Envelopes and streams that carry
	// another cluster id are refused.
	Cluster string
	// Logger receives the transport's logs; nil discards them.
	Logger hclog.Logger
	// QueueSize is the per-peer send queue length in messages;
	// 0 means DefaultQueueSize.
	QueueSize int
	// TLS, if set, is the configuration peers are dialed with (mutual TLS:
	// it holds this replica's certificate and, in RootCAs, the CA that peers'
	// certificates must chain to; see tlsconfig.Bundle.Client). Nil dials in
	// plain text. The server side is the daemon's: it adds grpc.Creds with
	// the matching server configuration to ServerOptions.
	TLS *tls.Config
	// DialOptions are appended to the transport's own (credentials, message
	// size limits, keepalive, connect backoff), so they can override them.
	DialOptions []grpc.DialOption
	// PeerDelay is for benchmarks and tests only: it emulates a one-way
	// network delay to some peers. Each message to such a peer is written to
	// its stream no earlier than PeerDelay[peer] after Send was called with
	// it; messages keep their order and those due together share an
	// Envelope. A delayed message waits in the peer's queue, so the queue
	// bounds the messages in flight through the delay (QueueSize), and a
	// full queue drops as usual. Missing, zero and negative entries mean no
	// delay.
	PeerDelay map[replica.ReplicaID]time.Duration
}

// Stats are the transport's counters since New. All counts are messages.
type Stats struct {
	// Sent counts messages written to a peer's stream. Written is not
	// delivered: a stream that breaks afterwards may lose them.
	Sent uint64
	// Dropped counts messages lost on the sending side: the peer's queue was
	// full (the peer is slow or unreachable), the stream broke while the
	// message was being sent, the message alone exceeded MaxMessageBytes,
	// or the transport was closed.
	Dropped uint64
	// Unroutable counts messages passed to Send whose To is Self or not a
	// configured peer.
	Unroutable uint64
	// Received counts messages from peers delivered to Inbox.
	Received uint64
	// Rejected counts messages refused on receipt: wrong cluster, unknown or
	// forged sender, not addressed to Self, or malformed.
	Rejected uint64
	// Peers has one entry per configured peer.
	Peers map[replica.ReplicaID]PeerStats
}

// PeerStats describes the outbound side of one peer.
type PeerStats struct {
	Addr string
	// Connected reports whether a stream to the peer is established.
	Connected bool
	// Queued is the number of messages waiting in the peer's send queue.
	Queued int
	// Sent and Dropped are this peer's shares of Stats.Sent and Stats.Dropped
	// (Dropped without the messages refused after Close).
	Sent, Dropped uint64
	// Delay is the emulated one-way delay to the peer (Config.PeerDelay).
	Delay time.Duration
}

// Transport sends and receives one replica's protocol messages. Its methods
// are safe for concurrent use.
type Transport struct {
	cfg   Config
	log   hclog.Logger
	peers map[replica.ReplicaID]*peer // read-only after New
	inbox chan replica.Message

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	mu     sync.Mutex // orders Start against Close
	closed atomic.Bool
	start  bool
	wg     sync.WaitGroup // sender goroutines

	sent, dropped, unroutable, received, rejected atomic.Uint64

	limiter rateLimiter
}

type peer struct {
	id        replica.ReplicaID
	addr      string
	delay     time.Duration // emulated one-way delay; 0 for none
	queue     chan queued
	connected atomic.Bool
	sent      atomic.Uint64
	dropped   atomic.Uint64
}

// New returns a transport for cfg. It opens no connection until Start; its
// Peer service may be registered and served before that.
func New(cfg Config) *Transport {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	log = log.Named("transport")
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg:     cfg,
		log:     log,
		peers:   make(map[replica.ReplicaID]*peer, len(cfg.Peers)),
		inbox:   make(chan replica.Message, InboxSize),
		ctx:     ctx,
		cancel:  cancel,
		limiter: rateLimiter{every: logEvery},
	}
	for pid, addr := range cfg.Peers {
		if pid == cfg.Self {
			log.Warn("ignoring peer entry for self", "self", pid, "addr", addr)
			continue
		}
		p := &peer{id: pid, addr: addr, delay: max(cfg.PeerDelay[pid], 0), queue: make(chan queued, cfg.QueueSize)}
		if p.delay > 0 {
			log.Warn("emulating a network delay to peer: for benchmarks and tests only", "peer", pid, "addr", addr, "delay", p.delay)
		}
		t.peers[pid] = p
	}
	return t
}

// ServerOptions returns the gRPC server options the daemon's server needs for
// the Peer service: message limits of MaxMessageBytes and a keepalive policy
// that admits this transport's pings and notices dead peers.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             keepaliveTime / 2,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    keepaliveTime,
			Timeout: keepaliveTimeout,
		}),
	}
}

// Register registers the Peer service on the daemon's gRPC server.
func (t *Transport) Register(s *grpc.Server) {
	epaxospb.RegisterPeerServer(s, &peerServer{t: t})
}

// Start starts one sender goroutine per peer, each of which connects to its
// peer and keeps reconnecting until Close. Calls after the first, or after
// Close, do nothing.
func (t *Transport) Start() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.start || t.closed.Load() {
		return
	}
	t.start = true
	for _, p := range t.peers {
		t.wg.Add(1)
		go t.runPeer(p)
	}
}

// Send enqueues each message on the queue of the peer msg.To. It never
// blocks: when that queue is full (the peer is slow or unreachable) the
// message is dropped and counted in Stats.Dropped; a message to Self or to
// an unknown replica is dropped and counted in Stats.Unroutable. The protocol
// tolerates loss; retransmission is the core's job.
//
// Messages to one peer are sent in the order given; those that arrive, arrive
// in that order. Send keeps the messages until they are sent; the caller must
// not modify them (see replica.Message). A message to a delayed peer (see
// Config.PeerDelay) is due its delay after this call.
func (t *Transport) Send(msgs []replica.Message) {
	var now time.Time // read once, for every delayed message of this call
	for _, m := range msgs {
		if t.closed.Load() {
			t.dropped.Add(1)
			continue
		}
		p := t.peers[m.To]
		if p == nil {
			t.unroutable.Add(1)
			t.warnLimited("unroutable", "dropping message to a replica that is not a peer", "to", m.To, "type", m.Type)
			continue
		}
		q := queued{m: m}
		if p.delay > 0 {
			if now.IsZero() {
				now = time.Now()
			}
			q.due = now.Add(p.delay)
		}
		select {
		case p.queue <- q:
		default:
			t.dropped.Add(1)
			p.dropped.Add(1)
		}
	}
}

// Inbox returns the messages received from peers, decoded and validated
// (From is a configured peer, To is Self). It is never closed. The channel
// holds InboxSize messages; while it is full, the stream handlers wait,
// which slows the sending peers through gRPC flow control.
func (t *Transport) Inbox() <-chan replica.Message { return t.inbox }

// Close stops the sender goroutines and closes their connections, and makes
// the stream handlers return. It does not stop the gRPC server, which the
// daemon owns. Close is idempotent; Send after Close drops.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed.Store(true)
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	s := Stats{
		Sent:       t.sent.Load(),
		Dropped:    t.dropped.Load(),
		Unroutable: t.unroutable.Load(),
		Received:   t.received.Load(),
		Rejected:   t.rejected.Load(),
		Peers:      make(map[replica.ReplicaID]PeerStats, len(t.peers)),
	}
	for id, p := range t.peers {
		s.Peers[id] = PeerStats{
			Addr:      p.addr,
			Connected: p.connected.Load(),
			Queued:    len(p.queue),
			Sent:      p.sent.Load(),
			Dropped:   p.dropped.Load(),
			Delay:     p.delay,
		}
	}
	return s
}

func (t *Transport) dialOptions() []grpc.DialOption {
	creds := insecure.NewCredentials()
	if t.cfg.TLS != nil {
		creds = credentials.NewTLS(t.cfg.TLS)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
		),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                keepaliveTime,
			Timeout:             keepaliveTimeout,
			PermitWithoutStream: true,
		}),
		// gRPC's own reconnection follows the same schedule as ours, so a
		// peer that comes back is found within maxBackoff.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  minBackoff,
				Multiplier: 2,
				Jitter:     0.2,
				MaxDelay:   maxBackoff,
			},
			MinConnectTimeout: handshakeTimeout,
		}),
	}
	return append(opts, t.cfg.DialOptions...)
}

// runPeer is the sender goroutine of one peer: it (re)connects with backoff
// and pumps the peer's queue into the stream until Close.
func (t *Transport) runPeer(p *peer) {
	defer t.wg.Done()
	log := t.log.With("peer", p.id, "addr", p.addr)
	var conn *grpc.ClientConn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	line := &delayLine{queue: p.queue} // outlives streams: a held message waits for the next one
	failures := 0                      // consecutive failed attempts
	var lastWarn time.Time
	for t.ctx.Err() == nil {
		var err error
		if conn == nil {
			conn, err = grpc.NewClient(p.addr, t.dialOptions()...)
			if err != nil {
				conn = nil
				err = fmt.Errorf("dial: %w", err)
			}
		}
		var st *peerStream
		if err == nil {
			st, err = t.openStream(conn)
		}
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			failures++
			switch {
			case failures <= warnAfter:
				log.Debug("connecting to peer failed", "attempt", failures, "error", err)
				if failures == warnAfter {
					log.Warn("cannot connect to peer, retrying; messages for it are dropped while its queue is full",
						"attempts", failures, "error", err)
					lastWarn = time.Now()
				}
			case time.Since(lastWarn) >= outageReminder:
				log.Warn("still cannot connect to peer", "attempts", failures, "dropped", p.dropped.Load(), "error", err)
				lastWarn = time.Now()
			}
			if !t.sleep(backoffDelay(failures)) {
				return
			}
			continue
		}

		if failures >= warnAfter {
			log.Info("reconnected to peer", "failed_attempts", failures)
		} else {
			log.Info("connected to peer")
		}
		p.connected.Store(true)
		began := time.Now()
		err = t.pump(p, st, line)
		p.connected.Store(false)
		if t.ctx.Err() != nil {
			return
		}
		// A stream that lived long enough starts a fresh backoff schedule; one
		// that breaks at once counts as another failed attempt, so a peer
		// that accepts and drops streams is retried no faster than backoff.
		if time.Since(began) > maxBackoff {
			failures = 0
		}
		failures++
		log.Info("stream to peer ended, reconnecting", "error", err)
		if !t.sleep(backoffDelay(failures)) {
			return
		}
	}
}

// peerStream is one open stream to a peer.
type peerStream struct {
	s       epaxospb.Peer_StreamClient
	ctx     context.Context // done when the stream ends
	cancel  context.CancelFunc
	recvErr chan error // the stream's final status, from the reader goroutine
}

// openStream opens a stream on conn and waits until the peer accepts it (its
// response headers) or refuses it.
func (t *Transport) openStream(conn *grpc.ClientConn) (*peerStream, error) {
	md := metadata.Pairs(mdCluster, t.cfg.Cluster, mdFrom, strconv.FormatUint(uint64(t.cfg.Self), 10))
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(t.ctx, md))
	timer := time.AfterFunc(handshakeTimeout, cancel)
	s, err := epaxospb.NewPeerClient(conn).Stream(ctx)
	if err != nil {
		timer.Stop()
		cancel()
		return nil, fmt.Errorf("open stream: %w", err)
	}
	hdr, _ := s.Header() // the error, if any, is reported by Recv
	if !timer.Stop() {
		cancel()
		_, _ = s.Recv()
		return nil, fmt.Errorf("peer did not accept the stream within %v", handshakeTimeout)
	}
	if hdr == nil {
		_, err := s.Recv()
		cancel()
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("peer closed the stream")
		}
		return nil, fmt.Errorf("stream refused: %w", err)
	}
	st := &peerStream{s: s, ctx: ctx, cancel: cancel, recvErr: make(chan error, 1)}
	// The server side never sends today; Recv returns when the stream ends,
	// and its error is the stream's status.
	go func() {
		for {
			if _, err := s.Recv(); err != nil {
				st.recvErr <- err
				cancel()
				return
			}
		}
	}()
	return st, nil
}

// pump drains p's queue, through its delay line, into st, up to MaxBatch
// messages and MaxMessageBytes per Envelope, until the stream ends or the
// transport closes. An envelope starts with the next message once it is due
// and packs behind it every queued message due by then. It returns the
// reason the stream ended.
func (t *Transport) pump(p *peer, st *peerStream, line *delayLine) error {
	defer st.cancel()
	budget := MaxMessageBytes - len(t.cfg.Cluster) - 64
	var carry *epaxospb.Message // did not fit in the previous envelope
	for {
		// A fresh slice per envelope: gRPC may still refer to a sent message.
		var batch []*epaxospb.Message
		size := 0
		// add packs m, or sets carry and reports false when m does not fit.
		add := func(m replica.Message) bool {
			pm := MessageToProto(m)
			n := proto.Size(pm) + envelopeOverhead
			switch {
			case n > budget:
				t.dropped.Add(1)
				p.dropped.Add(1)
				t.warnLimited("oversize", "dropping message larger than MaxMessageBytes",
					"peer", p.id, "type", m.Type, "instance", m.Instance, "bytes", n)
				return true
			case size+n > budget:
				carry = pm
				return false
			}
			batch = append(batch, pm)
			size += n
			return true
		}
		if carry != nil {
			batch = append(batch, carry)
			size += proto.Size(carry) + envelopeOverhead
			carry = nil
		} else {
			q, ok := line.next(st.ctx.Done())
			if !ok {
				return st.end(nil)
			}
			add(q.m)
		}
		var now time.Time // zero: every undelayed message is due
		if p.delay > 0 {
			now = time.Now()
		}
		for len(batch) < MaxBatch && carry == nil {
			q, ok := line.due(now)
			if !ok || !add(q.m) {
				break
			}
		}
		if len(batch) == 0 {
			continue // the only message was oversize
		}
		env := &epaxospb.Envelope{Cluster: t.cfg.Cluster, From: uint32(t.cfg.Self), Messages: batch}
		if err := st.s.Send(env); err != nil {
			lost := uint64(len(batch))
			if carry != nil {
				lost++
			}
			t.dropped.Add(lost)
			p.dropped.Add(lost)
			return st.end(err)
		}
		t.sent.Add(uint64(len(batch)))
		p.sent.Add(uint64(len(batch)))
	}
}

// end waits for st's reader to see the end of the stream, which has ended or
// is ending, and returns the most informative reason: the stream's status
// rather than the io.EOF that Send reports.
func (st *peerStream) end(sendErr error) error {
	var err error
	select {
	case err = <-st.recvErr:
	case <-time.After(handshakeTimeout):
		st.cancel()
		err = <-st.recvErr
	}
	st.cancel()
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		return err
	case sendErr != nil && !errors.Is(sendErr, io.EOF):
		return sendErr
	}
	return errors.New("peer closed the stream")
}

// sleep waits d or until Close; it reports whether the transport is open.
func (t *Transport) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-t.ctx.Done():
		return false
	}
}

// backoffDelay is the wait after the n-th consecutive failure: minBackoff
// doubling up to maxBackoff, uniformly jittered over its upper half.
func backoffDelay(n int) time.Duration {
	d := maxBackoff
	if n < 16 {
		d = min(minBackoff<<max(n-1, 0), maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// peerServer serves the Peer service for t.
type peerServer struct {
	epaxospb.UnimplementedPeerServer
	t *Transport
}

// Stream receives one peer's envelopes. It only reads; the response
// direction is reserved for later flow control.
func (s *peerServer) Stream(stream epaxospb.Peer_StreamServer) error {
	t := s.t
	ctx := stream.Context()
	if t.ctx.Err() != nil {
		return status.Error(codes.Unavailable, "replica is shutting down")
	}
	if err := checkPeerCert(ctx); err != nil {
		t.rejected.Add(1)
		t.warnLimited("cert", "refusing stream", "error", err)
		return status.Error(codes.PermissionDenied, err.Error())
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if c := md.Get(mdCluster); len(c) > 0 && c[0] != t.cfg.Cluster {
			t.rejected.Add(1)
			from := md.Get(mdFrom)
			t.warnLimited("cluster", "refusing stream from another cluster", "cluster", c[0], "from", from)
			return status.Errorf(codes.PermissionDenied, "stream is for cluster %q; replica %d is in cluster %q", c[0], t.cfg.Self, t.cfg.Cluster)
		}
	}
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		env, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		n := uint64(max(len(env.GetMessages()), 1))
		if env.GetCluster() != t.cfg.Cluster {
			t.rejected.Add(n)
			t.warnLimited("cluster", "refusing envelope from another cluster", "cluster", env.GetCluster(), "from", env.GetFrom())
			return status.Errorf(codes.PermissionDenied, "envelope is for cluster %q; replica %d is in cluster %q", env.GetCluster(), t.cfg.Self, t.cfg.Cluster)
		}
		from := replica.ReplicaID(env.GetFrom())
		if _, ok := t.peers[from]; !ok {
			t.rejected.Add(n)
			t.warnLimited("unknown-sender", "rejecting envelope from a replica that is not a peer", "from", from, "self", t.cfg.Self, "messages", len(env.GetMessages()))
			continue
		}
		for _, pm := range env.GetMessages() {
			m, err := MessageFromProto(pm)
			if err == nil && m.From != from {
				err = fmt.Errorf("%s claims to be from %d in an envelope from %d", m.Type, m.From, from)
			}
			if err == nil && m.To != t.cfg.Self {
				err = fmt.Errorf("%s is addressed to %d, not to this replica %d", m.Type, m.To, t.cfg.Self)
			}
			if err != nil {
				t.rejected.Add(1)
				t.warnLimited("reject:"+strconv.FormatUint(uint64(from), 10), "rejecting message from peer", "from", from, "error", err)
				continue
			}
			select {
			case t.inbox <- m:
				t.received.Add(1)
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			case <-t.ctx.Done():
				return status.Error(codes.Unavailable, "replica is shutting down")
			}
		}
	}
}

// checkPeerCert refuses a stream on a TLS connection whose certificate may
// not serve as a replica's (its extended key usage lacks serverAuth), such
// as the client certificate of `epaxosd tls init`: the server accepts every
// certificate of the CA, clients' too, and a client must not pose as a peer.
// Every replica's certificate allows serverAuth, since the replica serves
// with it. A stream on a plain-text connection passes.
func checkPeerCert(ctx context.Context) error {
	p, ok := grpcpeer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return nil
	}
	leaf := info.State.PeerCertificates[0]
	if !tlsconfig.AllowsUsage(leaf, x509.ExtKeyUsageServerAuth) {
		return fmt.Errorf("certificate %q (from %s) is not a replica's: its extended key usage does not allow serverAuth", leaf.Subject.CommonName, p.Addr)
	}
	return nil
}

// warnLimited logs at warn at most once per logEvery for key, reporting how
// many similar warnings were suppressed in between. Keys must come from a
// small fixed set (never from unvalidated peer input), so the limiter stays
// bounded.
func (t *Transport) warnLimited(key, msg string, args ...any) {
	ok, suppressed := t.limiter.allow(key)
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	t.log.Warn(msg, args...)
}

type rateLimiter struct {
	every time.Duration
	mu    sync.Mutex
	keys  map[string]*limitState
}

type limitState struct {
	last       time.Time
	suppressed int
}

// allow reports whether an event for key may be logged now, and how many
// events for key were suppressed since the last one allowed.
func (r *rateLimiter) allow(key string) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys == nil {
		r.keys = make(map[string]*limitState)
	}
	s := r.keys[key]
	if s == nil {
		s = &limitState{}
		r.keys[key] = s
	}
	now := time.Now()
	if !s.last.IsZero() && now.Sub(s.last) < r.every {
		s.suppressed++
		return false, 0
	}
	n := s.suppressed
	s.last, s.suppressed = now, 0
	return true, n
}
