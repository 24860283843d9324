package plugin

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	"github.com/epaxosd/epaxosd/proto/pluginpb"
)

// TestHost serves sm in this process, over the same gRPC stream and with the
// same checks as Serve, and returns a Host connected to it. It lets a plugin
// author test a StateMachine through the wire (result counts, panics, empty
// values) without building a binary. The Host is closed when the test ends;
// the server's log lines go to t.Log.
func TestHost(t testing.TB, sm StateMachine) *Host {
	t.Helper()
	log := hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: testWriter{t}, Level: hclog.Debug})

	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.WaitForHandlers(true))
	pluginpb.RegisterStateMachineServer(srv, newServer(sm, log))
	hs := health.NewServer()
	hs.SetServingStatus(goplugin.GRPCServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	stopServer := func() {
		srv.Stop() // waits for handlers, so nothing logs after the test
		<-served
	}

	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		stopServer()
		t.Fatalf("plugin.TestHost: dial: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := pluginpb.NewStateMachineClient(conn).Apply(ctx)
	if err != nil {
		cancel()
		_ = conn.Close()
		stopServer()
		t.Fatalf("plugin.TestHost: open Apply stream: %v", err)
	}
	ping := func() error {
		_, err := healthpb.NewHealthClient(conn).Check(context.Background(),
			&healthpb.HealthCheckRequest{Service: goplugin.GRPCServiceName})
		return err
	}
	kill := func() {
		_ = conn.Close()
		stopServer()
	}
	h := newHost("test", log, stream, cancel, ping, kill)
	t.Cleanup(h.Close)
	return h
}

// testWriter sends each log line to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
