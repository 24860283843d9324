// Package client is the Go client of epaxosd: applications use it to propose
// commands to a replica set and get the state machine's replies.
//
// It owns failover between replicas and exactly-once retries: every request
// carries a (client id, sequence number) pair, and a retry of the same request,
// to the same or another replica, carries the same pair, so the replicas
// apply it at most once. It must not make applications import the daemon's
// internal packages.
package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
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
	"google.golang.org/grpc/status"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

const (
	// MaxMessageBytes is the largest request or response the client sends or
	// accepts; it matches the daemon's server limit.
	MaxMessageBytes = 64 << 20

	// DefaultDialTimeout is Config.DialTimeout when it is 0.
	DefaultDialTimeout = 5 * time.Second

	// Backoff between rounds of attempts over all addresses.
	minRetryDelay = 20 * time.Millisecond
	maxRetryDelay = time.Second
)

// Access says how a command touches its key.
type Access int

const (
	Read Access = iota + 1
	Write
	Delete
)

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("access(%d)", int(a))
}

// ParseAccess parses "read", "write" or "delete".
func ParseAccess(s string) (Access, error) {
	switch s {
	case "read":
		return Read, nil
	case "write":
		return Write, nil
	case "delete":
		return Delete, nil
	}
	return 0, fmt.Errorf("unknown access %q (want read, write or delete)", s)
}

func (a Access) proto() (epaxospb.Access, bool) {
	switch a {
	case Read:
		return epaxospb.Access_READ, true
	case Write:
		return epaxospb.Access_WRITE, true
	case Delete:
		return epaxospb.Access_DELETE, true
	}
	return 0, false
}

// Config configures a Client.
type Config struct {
	// Addrs are the replicas' client addresses (host:port); at least one.
	Addrs []string
	// DialTimeout bounds one attempt to connect to a replica (gRPC's minimum
	// connect timeout): a request to a replica that cannot be reached fails
	// over after at most this long. 0 means DefaultDialTimeout.
	DialTimeout time.Duration
	// AttemptTimeout, if positive, bounds each attempt of a request at one
	// replica; an attempt that exceeds it fails over to the next replica
	// with the same (client id, seq). 0 means attempts are bounded only by
	// the caller's context.
	AttemptTimeout time.Duration
	// Logger receives failover events at debug level; nil discards them.
	Logger hclog.Logger
	// TLS, if set, makes every connection mutual TLS: it holds the client's
	// certificate and, in RootCAs, the CA the replicas' certificates must
	// chain to (tlsconfig.Load(ca, cert, key) and then Client("") build one).
	// The replicas' certificates are checked against the host of each
	// address unless ServerName is set. Nil connects in plain text, which a
	// replica with a tls block refuses.
	TLS *tls.Config
	// Unary sends every request as its own unary call instead of on the
	// shared ProposeBatches stream to each replica (see stream.go); slower, for
	// comparison and for servers that do not serve streams well.
	Unary bool
	// DialOptions are appended to the client's own (credentials, message
	// size limits, keepalive, reconnect backoff), so they can override
	// them.
	DialOptions []grpc.DialOption
}

// ReplyError is the state machine's error reply. The command WAS applied;
// the state machine answered it with an error (for example a failed
// precondition of the application). Propose returns it as (nil, *ReplyError).
type ReplyError struct {
	Message string
}

func (e *ReplyError) Error() string { return "state machine error: " + e.Message }

// ErrClosed is returned by Propose after Close.
var ErrClosed = errors.New("client is closed")

// Client proposes commands to an epaxosd replica set. It is safe for
// concurrent use.
//
// Exactly-once: a replica remembers, per client id, only the last sequence
// number it applied and its result, and answers a retry of that request with
// the remembered result. A client id must therefore never have two requests
// in flight. The Client keeps a pool of sessions, each a random 64-bit
// client id (crypto/rand) with its next sequence number. Each Propose takes
// a free session (creating one if none is free), sends its request with the
// session's next seq, retries it with the same (client id, seq) on failover,
// and returns the session with seq advanced, whether the request succeeded
// or not: a later request never reuses the seq of an abandoned one. A
// request abandoned when ctx ends may still be applied; a replica must
// never apply a sequence number at or below the last one it applied for
// that client id.
type Client struct {
	cfg   Config
	log   hclog.Logger
	addrs []string
	conns []*grpc.ClientConn
	stubs []epaxospb.ClientClient

	mu      sync.Mutex
	closed  bool
	streams []*replicaStream // per replica: the open ProposeBatches stream, if any
	unary   []bool           // per replica: it does not serve ProposeBatches
	opening []sync.Mutex     // per replica: held while a stream is opened
	// retiredMessages counts the messages of streams that broke.
	retiredMessages uint64

	streamAttempts, unaryAttempts atomic.Uint64
	free                          []*session // idle sessions, reused LIFO
	preferred                     int        // index of the address that last answered
}

// session is one exactly-once stream of requests: a client id and the next
// sequence number to use. At most one request uses a session at a time.
type session struct {
	clientID uint64
	next     uint64
}

// New returns a client for cfg. It does not wait for connections: each
// replica is dialed in the background and on first use.
func New(cfg Config) (*Client, error) {
	var addrs []string
	for _, a := range cfg.Addrs {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("client: no replica address")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	c := &Client{cfg: cfg, log: log.Named("client"), addrs: addrs}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
		),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 20 * time.Second, Timeout: 5 * time.Second}),
		// Reconnect quickly, so that a replica that comes back is used again
		// soon; gRPC's default backoff grows to two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   5 * time.Second,
			},
			MinConnectTimeout: cfg.DialTimeout,
		}),
	}
	opts = append(opts, cfg.DialOptions...)
	for _, a := range addrs {
		conn, err := grpc.NewClient(a, opts...)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("client: replica address %q: %w", a, err)
		}
		c.conns = append(c.conns, conn)
		c.stubs = append(c.stubs, epaxospb.NewClientClient(conn))
	}
	c.streams = make([]*replicaStream, len(addrs))
	c.unary = make([]bool, len(addrs))
	c.opening = make([]sync.Mutex, len(addrs))
	return c, nil
}

// Propose proposes the command (access, key, value) and returns the state
// machine's reply once the command is committed and executed.
//
// When a replica is unavailable (or an attempt exceeds AttemptTimeout, or
// the replica reports DeadlineExceeded) Propose tries the next address, round
// robin from the one that last answered, backing off a little after each
// round, until ctx is done; then it returns an error that wraps ctx.Err().
// Other errors are returned at once, naming the replica. A state machine
// error reply is returned as *ReplyError.
func (c *Client) Propose(ctx context.Context, access Access, key string, value []byte) ([]byte, error) {
	pa, ok := access.proto()
	if !ok {
		return nil, fmt.Errorf("propose: invalid access %v", access)
	}
	s, err := c.takeSession()
	if err != nil {
		return nil, err
	}
	defer c.putSession(s)
	seq := s.next
	s.next++
	req := &epaxospb.ProposeRequest{ClientId: s.clientID, Seq: seq, Access: pa, Key: []byte(key), Value: value}

	c.mu.Lock()
	start := c.preferred
	c.mu.Unlock()
	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 && attempt%len(c.addrs) == 0 {
			if err := sleepCtx(ctx, retryDelay(attempt/len(c.addrs))); err != nil {
				return nil, fmt.Errorf("propose %s %q: %w (last error: %v)", access, key, err, lastErr)
			}
		}
		i := (start + attempt) % len(c.addrs)
		resp, err := c.attempt(ctx, i, req)
		if err == nil {
			c.mu.Lock()
			c.preferred = i
			c.mu.Unlock()
			if resp.GetError() != "" {
				return nil, &ReplyError{Message: resp.GetError()}
			}
			return resp.GetValue(), nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("propose %s %q: %w (last error from %s: %v)", access, key, ctx.Err(), c.addrs[i], err)
		}
		if !retryable(err) {
			return nil, fmt.Errorf("propose %s %q to %s: %w", access, key, c.addrs[i], err)
		}
		c.log.Debug("replica failed, trying the next one", "addr", c.addrs[i], "client_id", req.ClientId, "seq", req.Seq, "error", err)
		lastErr = fmt.Errorf("%s: %w", c.addrs[i], err)
	}
}

func (c *Client) attempt(ctx context.Context, i int, req *epaxospb.ProposeRequest) (*epaxospb.ProposeResponse, error) {
	if c.cfg.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		defer cancel()
	}
	if !c.cfg.Unary {
		s, err := c.streamTo(i)
		if err == nil {
			c.streamAttempts.Add(1)
			resp, err := s.propose(ctx, req)
			if !errors.Is(err, errUnary) {
				return resp, err
			}
		} else if !errors.Is(err, errUnary) {
			return nil, err
		}
	}
	c.unaryAttempts.Add(1)
	return c.stubs[i].Propose(ctx, req)
}

// Stats counts a Client's attempts by how they were sent.
type Stats struct {
	StreamAttempts uint64 // requests sent on a replica's ProposeBatches stream
	StreamMessages uint64 // messages that carried them
	UnaryAttempts  uint64 // requests sent as unary calls
}

// Stats returns the attempts made so far.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	messages := c.retiredMessages
	streams := c.streams
	c.mu.Unlock()
	for _, s := range streams {
		if s != nil {
			messages += s.sentMessages()
		}
	}
	return Stats{StreamAttempts: c.streamAttempts.Load(), StreamMessages: messages, UnaryAttempts: c.unaryAttempts.Load()}
}

// retryable reports whether err, from an attempt whose caller's context is
// not done, may succeed at another replica: the replica is unreachable or
// did not answer in time. Retrying is safe because the request keeps its
// (client id, seq).
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// Close closes the connections. Requests in flight fail; later calls of
// Propose return ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.free = nil
	streams := c.streams
	c.mu.Unlock()
	for _, s := range streams {
		if s != nil {
			s.fail(status.Error(codes.Canceled, "client closed"))
		}
	}
	var errs []error
	for _, conn := range c.conns {
		if err := conn.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// takeSession returns an idle session, or a new one if none is idle.
func (c *Client) takeSession() (*session, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if n := len(c.free); n > 0 {
		s := c.free[n-1]
		c.free[n-1] = nil
		c.free = c.free[:n-1]
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()
	id, err := newClientID()
	if err != nil {
		return nil, fmt.Errorf("propose: new client id: %w", err)
	}
	return &session{clientID: id, next: 1}, nil
}

// putSession makes s idle again; its next seq has already been advanced.
func (c *Client) putSession(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.free = append(c.free, s)
	}
}

// newClientID returns a random non-zero 64-bit client id.
func newClientID() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
			return id, nil
		}
	}
}

// retryDelay is the pause before the round-th round of attempts (round ≥ 1):
// doubling from minRetryDelay up to maxRetryDelay, jittered over its upper
// half.
func retryDelay(round int) time.Duration {
	d := maxRetryDelay
	if round < 16 {
		d = min(minRetryDelay<<(round-1), maxRetryDelay)
	}
	return d/2 + mrand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
