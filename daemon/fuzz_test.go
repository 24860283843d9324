package daemon

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/replica"
	"github.com/epaxosd/epaxosd/wire"
)

// FuzzClientRequest sends arbitrary ProposeRequests, as a client's gRPC
// message arrives on the wire, through the client service's validation and
// conversion. access may be any enum value, valid or not. Fuzzed keys and
// values are short, so growKey and growValue, when non-zero, pad the key or
// value to within two bytes of MaxKeyBytes or MaxValueBytes, on either side
// of the limit.
//
// A request is refused exactly when it breaks one of the documented rules,
// and then Propose answers InvalidArgument with a reason that names the
// offending field, before it touches the replica (the service here has no
// daemon behind it). An accepted request becomes the Command it describes,
// which survives the wire format of peers and disk (package wire) unchanged.
func FuzzClientRequest(f *testing.F) {
	f.Add(int32(epaxospb.Access_WRITE), uint64(1), uint64(1), []byte("k"), []byte("v"), int8(0), int8(0))
	f.Fuzz(func(t *testing.T, access int32, clientID, seq uint64, key, value []byte, growKey, growValue int8) {
		key = grow(key, MaxKeyBytes, growKey)
		value = grow(value, MaxValueBytes, growValue)
		sent := &epaxospb.ProposeRequest{
			ClientId: clientID, Seq: seq, Access: epaxospb.Access(access), Key: key, Value: value,
		}
		encoded, err := proto.Marshal(sent)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		req := &epaxospb.ProposeRequest{}
		if err := proto.Unmarshal(encoded, req); err != nil {
			t.Fatalf("unmarshal of a marshalled request: %v", err)
		}

		a := req.GetAccess()
		accessOK := a == epaxospb.Access_READ || a == epaxospb.Access_WRITE || a == epaxospb.Access_DELETE
		valid := accessOK && clientID != 0 && seq != 0 &&
			len(key) > 0 && len(key) <= MaxKeyBytes && len(value) <= MaxValueBytes &&
			(a == epaxospb.Access_WRITE || len(value) == 0)

		cmd, err := commandFromRequest(req)
		if err != nil {
			if valid {
				t.Fatalf("valid request refused: %v\nrequest: %s", err, summary(req))
			}
			checkRefusal(t, req, cmd, err)
			return
		}
		if !valid {
			t.Fatalf("invalid request accepted as %s\nrequest: %s", cmdSummary(cmd), summary(req))
		}
		checkCommand(t, req, cmd)
	})
}

// grow pads b with copies of its last byte (or 'x') to within two bytes of
// limit, on either side, if by is non-zero.
func grow(b []byte, limit int, by int8) []byte {
	if by == 0 {
		return b
	}
	n := limit + int(by)%3
	if len(b) >= n {
		return b
	}
	fill := byte('x')
	if len(b) > 0 {
		fill = b[len(b)-1]
	}
	return append(b, bytes.Repeat([]byte{fill}, n-len(b))...)
}

// summary describes a request without its possibly huge key and value.
func summary(req *epaxospb.ProposeRequest) string {
	k, v := req.GetKey(), req.GetValue()
	return fmt.Sprintf("access=%v client_id=%d seq=%d key=%q (%d bytes) value=%q (%d bytes)",
		req.GetAccess(), req.GetClientId(), req.GetSeq(), k[:min(len(k), 16)], len(k), v[:min(len(v), 16)], len(v))
}

// cmdSummary describes a command without its possibly huge key and value.
func cmdSummary(c replica.Command) string {
	return fmt.Sprintf("{ClientID:%d Seq:%d Access:%v Key:%q (%d bytes) Value:%q (%d bytes)}",
		c.ClientID, c.Seq, c.Access, c.Key[:min(len(c.Key), 16)], len(c.Key), c.Value[:min(len(c.Value), 16)], len(c.Value))
}

// checkRefusal checks that a refused request is refused as the client
// service documents: InvalidArgument with a reason naming a field, and no
// command.
func checkRefusal(t *testing.T, req *epaxospb.ProposeRequest, cmd replica.Command, err error) {
	t.Helper()
	if cmd.ClientID != 0 || cmd.Seq != 0 || cmd.Access != 0 || cmd.Key != "" || cmd.Value != nil {
		t.Errorf("refused request still produced a command %s", cmdSummary(cmd))
	}
	if !mentionsAField(err.Error()) {
		t.Errorf("reason %q names no field of the request", err)
	}
	// The service itself: the daemon is nil, so this also checks that a bad
	// request is answered before anything touches the replica.
	resp, perr := (&clientService{}).Propose(context.Background(), req)
	st, ok := status.FromError(perr)
	switch {
	case resp != nil:
		t.Errorf("Propose of a bad request answered %v", resp)
	case !ok || st.Code() != codes.InvalidArgument:
		t.Errorf("Propose of a bad request: error %v, want code InvalidArgument", perr)
	case st.Message() != err.Error():
		t.Errorf("Propose reason %q, want %q", st.Message(), err)
	}
	if t.Failed() {
		t.Logf("request: %s", summary(req))
	}
}

// mentionsAField reports whether reason names what was wrong with the
// request.
func mentionsAField(reason string) bool {
	for _, field := range []string{"access", "client_id", "seq", "key", "value"} {
		if strings.Contains(reason, field) {
			return true
		}
	}
	return false
}

// checkCommand checks that cmd is the command req describes, and that it
// reaches peers unchanged.
func checkCommand(t *testing.T, req *epaxospb.ProposeRequest, cmd replica.Command) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("request: %s", summary(req))
		}
	}()
	want := map[epaxospb.Access]replica.Access{
		epaxospb.Access_READ: replica.Read, epaxospb.Access_WRITE: replica.Write, epaxospb.Access_DELETE: replica.Delete,
	}[req.GetAccess()]
	switch {
	case cmd.Access != want || !cmd.Access.Valid():
		t.Errorf("access %v became %v", req.GetAccess(), cmd.Access)
	case cmd.ClientID != req.GetClientId() || cmd.Seq != req.GetSeq():
		t.Errorf("client %d seq %d became client %d seq %d", req.GetClientId(), req.GetSeq(), cmd.ClientID, cmd.Seq)
	case cmd.Key != string(req.GetKey()) || !bytes.Equal(cmd.Value, req.GetValue()):
		t.Errorf("key or value changed: command has a %d-byte key %q and a %d-byte value %q",
			len(cmd.Key), cmd.Key[:min(len(cmd.Key), 16)], len(cmd.Value), cmd.Value[:min(len(cmd.Value), 16)])
	case cmd.Access != replica.Write && len(cmd.Value) > 0:
		t.Errorf("%v command carries a value", cmd.Access)
	}

	encoded, err := proto.Marshal(wire.CommandToProto(cmd))
	if err != nil {
		t.Fatalf("marshal command for peers: %v", err)
	}
	var pc epaxospb.Command
	if err := proto.Unmarshal(encoded, &pc); err != nil {
		t.Fatalf("unmarshal command from peers: %v", err)
	}
	got, err := wire.CommandFromProto(&pc)
	if err != nil {
		t.Fatalf("a peer would refuse accepted command %s: %v", cmdSummary(cmd), err)
	}
	if got.ClientID != cmd.ClientID || got.Seq != cmd.Seq || got.Access != cmd.Access ||
		got.Key != cmd.Key || !bytes.Equal(got.Value, cmd.Value) {
		t.Errorf("command changed through the wire format: %s became %s", cmdSummary(cmd), cmdSummary(got))
	}
}
