package daemon

import (
	"context"
	"strings"
	"sync/atomic"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// Admission limits on client requests. Together with the server's
// MaxConcurrentStreams and message size limits they bound the memory that
// clients can make a replica hold, whatever rate they send at:
//
//   - each connection may open at most MaxStreamsPerConnection requests at
//     once (HTTP/2 makes the client wait for more: back-pressure, not errors);
//   - each connection may send at most its rate limit of requests per second
//     (a token bucket, see Config.ClientRateLimit); requests above it fail
//     at once with ResourceExhausted;
//   - all connections together may have at most MaxInFlightRequestBytes of
//     requests waiting to be ordered and executed; a request that would
//     exceed it fails at once with ResourceExhausted.
const (
	MaxStreamsPerConnection = 1024
	MaxInFlightRequestBytes = 256 << 20
)

// clientServicePrefix is the full method name prefix of the Client service;
// admission applies to it and not to the Peer service.
var clientServicePrefix = "/" + epaxospb.Client_ServiceDesc.ServiceName + "/"

// admission is the state behind the limits: a stats.Handler that gives
// each connection its own token bucket, and a unary interceptor that
// charges requests to it and to the shared byte budget.
type admission struct {
	perSecond float64 // per connection; 0: unlimited
	burst     int
	maxBytes  int64
	inFlight  atomic.Int64 // bytes of admitted requests not yet answered
}

// newAdmission returns limits of perSecond requests per connection (0 for
// none), with a burst of a tenth of a second's worth (at least 100), and a
// shared budget of maxBytes.
func newAdmission(perSecond int64, maxBytes int64) *admission {
	burst := int(perSecond / 10)
	if burst < 100 {
		burst = 100
	}
	return &admission{perSecond: float64(perSecond), burst: burst, maxBytes: maxBytes}
}

// serverOptions installs the limits on a gRPC server.
func (a *admission) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(MaxStreamsPerConnection),
		grpc.StatsHandler(a),
		grpc.ChainUnaryInterceptor(a.intercept),
	}
}

type connLimiterKey struct{}

// TagConn gives the connection its token bucket; gRPC derives the context
// of every request on the connection from the one returned.
func (a *admission) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	if a.perSecond <= 0 {
		return ctx
	}
	return context.WithValue(ctx, connLimiterKey{}, rate.NewLimiter(rate.Limit(a.perSecond), a.burst))
}

func (a *admission) HandleConn(context.Context, stats.ConnStats) {}
func (a *admission) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return ctx
}
func (a *admission) HandleRPC(context.Context, stats.RPCStats) {}

// intercept admits a unary Client request or refuses it with
// ResourceExhausted and a reason the client can act on.
func (a *admission) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, clientServicePrefix) {
		return handler(ctx, req)
	}
	m, _ := req.(proto.Message)
	size, err := a.admit(ctx, m)
	if err != nil {
		return nil, err
	}
	defer a.release(size)
	return handler(ctx, req)
}

// admit charges one request, unary or on a stream, to its connection's
// rate limit (found in ctx) and to the shared byte budget. It returns the
// bytes charged, to release once the request is answered, or a
// ResourceExhausted status.
func (a *admission) admit(ctx context.Context, req proto.Message) (int64, error) {
	if l, ok := ctx.Value(connLimiterKey{}).(*rate.Limiter); ok && !l.Allow() {
		return 0, status.Errorf(codes.ResourceExhausted,
			"this connection sent more than %.0f requests per second (burst %d), the replica's client_rate_limit; slow down and retry",
			a.perSecond, a.burst)
	}
	size := int64(1)
	if req != nil {
		size += int64(proto.Size(req))
	}
	if a.inFlight.Add(size) > a.maxBytes {
		a.inFlight.Add(-size)
		return 0, status.Errorf(codes.ResourceExhausted,
			"the replica already holds %d MiB of client requests in flight, its limit; retry later", a.maxBytes>>20)
	}
	return size, nil
}

// release returns what admit charged.
func (a *admission) release(size int64) { a.inFlight.Add(-size) }
