package plugin

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/epaxosd/epaxosd/proto/pluginpb"
)

// grpcPlugin is the go-plugin glue for the StateMachine service. On the plugin
// side sm and log are set; on the host side it only makes clients.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	sm  StateMachine
	log hclog.Logger
}

var _ goplugin.GRPCPlugin = (*grpcPlugin)(nil)

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterStateMachineServer(s, newServer(p.sm, p.log))
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pluginpb.NewStateMachineClient(c), nil
}

// The conversions between this package's types and pluginpb's. Both sides
// check Access, so an invalid command is caught before it reaches a
// StateMachine whoever sends it.

func commandsFromProto(pcs []*pluginpb.Command) ([]Command, error) {
	cmds := make([]Command, len(pcs))
	for i, pc := range pcs {
		a := pc.GetAccess()
		if a < pluginpb.Access_READ || a > pluginpb.Access_DELETE {
			return nil, fmt.Errorf("command %d has invalid access %v", i, a)
		}
		cmds[i] = Command{Access: Access(a), Key: pc.GetKey(), Value: pc.GetValue()}
	}
	return cmds, nil
}

func commandsToProto(cmds []Command) ([]*pluginpb.Command, error) {
	pcs := make([]*pluginpb.Command, len(cmds))
	slab := make([]pluginpb.Command, len(cmds)) // one allocation for the batch
	for i, c := range cmds {
		if !c.Access.Valid() {
			return nil, fmt.Errorf("command %d has invalid access %v", i, c.Access)
		}
		pc := &slab[i]
		pc.Access, pc.Key, pc.Value = pluginpb.Access(c.Access), c.Key, c.Value
		pcs[i] = pc
	}
	return pcs, nil
}

func resultsToProto(results []Result) []*pluginpb.Result {
	prs := make([]*pluginpb.Result, len(results))
	slab := make([]pluginpb.Result, len(results))
	for i, r := range results {
		slab[i].Value, slab[i].Error = r.Value, r.Error
		prs[i] = &slab[i]
	}
	return prs
}

func resultsFromProto(prs []*pluginpb.Result) []Result {
	results := make([]Result, len(prs))
	for i, pr := range prs {
		results[i] = Result{Value: pr.GetValue(), Error: pr.GetError()}
	}
	return results
}
