package transport

import (
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/replica"
)

func id(r replica.ReplicaID, s uint64) replica.InstanceID {
	return replica.InstanceID{Replica: r, Slot: s}
}

func testPayload() *replica.Payload {
	return &replica.Payload{Commands: []replica.Command{
		{ClientID: 7, Seq: 1, Access: replica.Write, Key: "k", Value: []byte("v")},
		{ClientID: 8, Seq: 2, Access: replica.Read, Key: "k"},
		{ClientID: 9, Seq: 3, Access: replica.Delete, Key: "\x00binary\xff"},
	}}
}

// sampleMessages has one message of every type, with the fields the type uses.
func sampleMessages() []replica.Message {
	deps := replica.NewDeps(id(0, 3), id(2, 1), id(1, 9))
	return []replica.Message{
		{Type: replica.MsgPreAccept, From: 0, To: 1, Instance: id(0, 5), Command: testPayload(), Deps: deps},
		{Type: replica.MsgPreAcceptOK, From: 1, To: 0, Instance: id(0, 5), Deps: replica.NewDepsWithHorizon([]uint64{2, 0, 7}, id(0, 3), id(1, 9))},
		{Type: replica.MsgAccept, From: 0, To: 2, Ballot: 4, Instance: id(1, 5), Command: testPayload(), Deps: deps},
		{Type: replica.MsgAcceptOK, From: 2, To: 0, Ballot: 4, Instance: id(1, 5)},
		{Type: replica.MsgCommit, From: 0, To: 1, Ballot: 3, Instance: id(0, 1), Command: replica.NopPayload()},
		{Type: replica.MsgRecover, From: 2, To: 1, Ballot: 5, Instance: id(0, 2)},
		{Type: replica.MsgRecoverOK, From: 1, To: 2, Ballot: 5, Instance: id(0, 2), Abal: 2,
			Command: testPayload(), Deps: deps, InitCommand: testPayload(), InitDeps: replica.NewDepsWithHorizon([]uint64{0, 4}, id(0, 1)),
			Phase: replica.Accepted},
		{Type: replica.MsgRecoverOK, From: 1, To: 2, Ballot: 5, Instance: id(0, 3), Phase: replica.Initial}, // ⊥ everywhere
		{Type: replica.MsgValidate, From: 2, To: 0, Ballot: 5, Instance: id(0, 2), Command: testPayload(), Deps: deps},
		{Type: replica.MsgValidateOK, From: 0, To: 2, Ballot: 5, Instance: id(0, 2), Invalidators: []replica.Invalidator{
			{Instance: id(1, 4), Phase: replica.PreAccepted}, {Instance: id(2, 7), Phase: replica.Committed}}},
		{Type: replica.MsgWaiting, From: 1, To: 0, Instance: id(0, 2), Count: 2},
		{Type: replica.MsgNack, From: 1, To: 0, Ballot: 9, Instance: id(0, 2)},
		{Type: replica.MsgFetch, From: 1, To: 0, Instance: id(0, 2), Deps: replica.NewDeps(id(0, 2), id(1, 5), id(2, 1))},
		{Type: replica.MsgCommit, From: 4, To: 3, Ballot: 1<<64 - 1, Instance: id(1<<32-1, 1<<64-1), Command: &replica.Payload{}},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	seen := map[replica.MessageType]bool{}
	for _, m := range sampleMessages() {
		seen[m.Type] = true
		t.Run(m.Type.String(), func(t *testing.T) {
			// In memory.
			got, err := MessageFromProto(MessageToProto(m))
			if err != nil {
				t.Fatalf("MessageFromProto: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("in-memory round trip:\n got %#v\nwant %#v", got, m)
			}
			// Through the wire encoding.
			b, err := proto.Marshal(MessageToProto(m))
			if err != nil {
				t.Fatal(err)
			}
			var pm epaxospb.Message
			if err := proto.Unmarshal(b, &pm); err != nil {
				t.Fatal(err)
			}
			got, err = MessageFromProto(&pm)
			if err != nil {
				t.Fatalf("MessageFromProto after marshal: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("wire round trip:\n got %#v\nwant %#v", got, m)
			}
		})
	}
	for typ := replica.MsgPreAccept; typ.Valid(); typ++ {
		if !seen[typ] {
			t.Errorf("no round-trip case for %s", typ)
		}
	}
}

func TestMessageFromProtoRejects(t *testing.T) {
	inst := &epaxospb.InstanceID{Replica: 1, Slot: 1}
	cmd := func(a epaxospb.Access) *epaxospb.Payload {
		return &epaxospb.Payload{Commands: []*epaxospb.Command{{ClientId: 1, Seq: 1, Access: a, Key: []byte("k")}}}
	}
	msg := func(f func(*epaxospb.Message)) *epaxospb.Message {
		pm := &epaxospb.Message{Type: epaxospb.MessageType_COMMIT, From: 1, To: 2, Instance: inst, Command: cmd(epaxospb.Access_WRITE)}
		f(pm)
		return pm
	}
	cases := []struct {
		name string
		pm   *epaxospb.Message
		want string // substring of the error
	}{
		{"nil message", nil, "nil message"},
		{"unspecified type", msg(func(m *epaxospb.Message) { m.Type = 0 }), "unknown message type 0"},
		{"type too large", msg(func(m *epaxospb.Message) { m.Type = 13 }), "unknown message type 13"},
		{"type wraps uint8", msg(func(m *epaxospb.Message) { m.Type = 257 }), "unknown message type 257"},
		{"negative type", msg(func(m *epaxospb.Message) { m.Type = -1 }), "unknown message type -1"},
		{"missing instance", msg(func(m *epaxospb.Message) { m.Instance = nil }), "instance: missing"},
		{"slot 0", msg(func(m *epaxospb.Message) { m.Instance = &epaxospb.InstanceID{Replica: 1} }), "slot 0"},
		{"unknown phase", msg(func(m *epaxospb.Message) { m.Phase = 4 }), "unknown phase 4"},
		{"negative phase", msg(func(m *epaxospb.Message) { m.Phase = -2 }), "unknown phase -2"},
		{"deps columns differ", msg(func(m *epaxospb.Message) {
			m.Deps = &epaxospb.Deps{Replicas: []uint32{1, 2}, Slots: []uint64{1}}
		}), "columns of different lengths"},
		{"deps slot 0", msg(func(m *epaxospb.Message) {
			m.Deps = &epaxospb.Deps{Replicas: []uint32{1, 2}, Slots: []uint64{1, 0}}
		}), "deps: entry 1"},
		{"init deps columns differ", msg(func(m *epaxospb.Message) {
			m.InitDeps = &epaxospb.Deps{Slots: []uint64{1}}
		}), "init_deps: columns"},
		{"unspecified access", msg(func(m *epaxospb.Message) { m.Command = cmd(0) }), "unknown access 0"},
		{"unknown access", msg(func(m *epaxospb.Message) { m.Command = cmd(9) }), "unknown access 9"},
		{"init command unknown access", msg(func(m *epaxospb.Message) { m.InitCommand = cmd(4) }), "init_command: commands[0]: unknown access 4"},
		{"nil command in payload", msg(func(m *epaxospb.Message) {
			m.Command = &epaxospb.Payload{Commands: []*epaxospb.Command{nil}}
		}), "nil command"},
		{"nop with commands", msg(func(m *epaxospb.Message) { m.Command.Nop = true }), "no-op payload carries 1 commands"},
		{"invalidator without instance", msg(func(m *epaxospb.Message) {
			m.Invalidators = []*epaxospb.Invalidator{{Phase: 1}}
		}), "invalidators[0]: missing instance"},
		{"nil invalidator", msg(func(m *epaxospb.Message) {
			m.Invalidators = []*epaxospb.Invalidator{{Instance: inst}, nil}
		}), "invalidators[1]: missing instance"},
		{"invalidator slot 0", msg(func(m *epaxospb.Message) {
			m.Invalidators = []*epaxospb.Invalidator{{Instance: &epaxospb.InstanceID{Replica: 3}}}
		}), "invalidators[0]: instance 3.0"},
		{"invalidator unknown phase", msg(func(m *epaxospb.Message) {
			m.Invalidators = []*epaxospb.Invalidator{{Instance: inst, Phase: 7}}
		}), "invalidators[0]: unknown phase 7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := MessageFromProto(tc.pm)
			if err == nil {
				t.Fatalf("accepted %v", m)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if !reflect.DeepEqual(m, replica.Message{}) {
				t.Fatalf("returned a message with the error: %v", m)
			}
		})
	}
}

func TestNilPayloadIsBottom(t *testing.T) {
	m, err := MessageFromProto(&epaxospb.Message{Type: epaxospb.MessageType_RECOVER_OK, Instance: &epaxospb.InstanceID{Slot: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Command != nil || m.InitCommand != nil {
		t.Fatalf("absent payloads must be ⊥ (nil), got %v / %v", m.Command, m.InitCommand)
	}
}

func FuzzMessageFromProto(f *testing.F) {
	for _, m := range sampleMessages() {
		b, err := proto.Marshal(MessageToProto(m))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x63})                                                 // type 99
	f.Add([]byte{0x08, 0x05, 0x22, 0x02, 0x08, 0x01})                         // commit, instance with slot 0
	f.Add([]byte{0x08, 0x05, 0x22, 0x02, 0x10, 0x01, 0x3a, 0x02, 0x0a, 0x00}) // deps with empty packed column
	f.Fuzz(func(t *testing.T, b []byte) {
		var pm epaxospb.Message
		if proto.Unmarshal(b, &pm) != nil {
			return
		}
		m, err := MessageFromProto(&pm)
		if err != nil {
			return
		}
		// An accepted message survives re-encoding unchanged, in memory and on the wire.
		m2, err := MessageFromProto(MessageToProto(m))
		if err != nil {
			t.Fatalf("re-decoding an accepted message failed: %v\n%v", err, m)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("unstable round trip:\n got %#v\nwant %#v", m2, m)
		}
		b2, err := proto.Marshal(MessageToProto(m))
		if err != nil {
			t.Fatal(err)
		}
		var pm3 epaxospb.Message
		if err := proto.Unmarshal(b2, &pm3); err != nil {
			t.Fatal(err)
		}
		m3, err := MessageFromProto(&pm3)
		if err != nil {
			t.Fatalf("re-decoding marshalled message failed: %v", err)
		}
		if !reflect.DeepEqual(m, m3) {
			t.Fatalf("unstable wire round trip:\n got %#v\nwant %#v", m3, m)
		}
	})
}
