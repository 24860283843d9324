package wire

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/replica"
)

func id(r replica.ReplicaID, s uint64) replica.InstanceID {
	return replica.InstanceID{Replica: r, Slot: s}
}

// Every shape of a dependency set survives the wire, in memory and marshalled.
func TestDeps_RoundTrip(t *testing.T) {
	for _, d := range []replica.Deps{
		{},
		replica.NewDeps(id(0, 1), id(2, 5)),
		replica.NewDepsWithHorizon([]uint64{3, 0, 9}),
		replica.NewDepsWithHorizon([]uint64{0, 1 << 60}, id(0, 2), id(1, 1<<60+1)),
	} {
		got, err := DepsFromProto(DepsToProto(d))
		if err != nil || !reflect.DeepEqual(got, d) {
			t.Errorf("deps %v came back as %v, %v", d, got, err)
		}
		b, err := proto.Marshal(DepsToProto(d))
		if err != nil {
			t.Fatal(err)
		}
		var pd epaxospb.Deps
		if err := proto.Unmarshal(b, &pd); err != nil {
			t.Fatal(err)
		}
		if got, err := DepsFromProto(&pd); err != nil || !reflect.DeepEqual(got, d) {
			t.Errorf("deps %v came back from the wire as %v, %v", d, got, err)
		}
	}
}

// Order, duplicates, ids under the horizon and trailing zeros of the horizon
// carry no information: a received set is normalized, so equal sets compare
// equal however a peer encoded them.
func TestDepsFromProto_Normalizes(t *testing.T) {
	got, err := DepsFromProto(&epaxospb.Deps{
		Replicas: []uint32{2, 0, 2, 1, 0, 0},
		Slots:    []uint64{1, 9, 1, 3, 2, 1},
		Horizon:  []uint64{1, 3, 0, 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := replica.NewDepsWithHorizon([]uint64{1, 3}, id(0, 2), id(0, 9), id(2, 1))
	if !got.Equal(want) || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if !got.Contains(id(1, 3)) || !got.Contains(id(0, 1)) || got.Contains(id(1, 4)) || got.Contains(id(2, 2)) {
		t.Fatalf("membership of %v is wrong", got)
	}
}

func TestDepsFromProto_Rejects(t *testing.T) {
	for name, pd := range map[string]*epaxospb.Deps{
		"slot 0":         {Replicas: []uint32{1}, Slots: []uint64{0}},
		"columns differ": {Replicas: []uint32{1, 2}, Slots: []uint64{1}},
	} {
		if d, err := DepsFromProto(pd); err == nil {
			t.Errorf("%s: accepted as %v", name, d)
		}
	}
}

func TestPayload_RoundTrip(t *testing.T) {
	cmds := &replica.Payload{Commands: []replica.Command{
		{ClientID: 7, Seq: 1, Access: replica.Write, Key: "k", Value: []byte("v")},
		{ClientID: 8, Seq: 2, Access: replica.Read, Key: "k"},
		{ClientID: 9, Seq: 3, Access: replica.Delete, Key: "\x00binary\xff"},
	}}
	for _, p := range []*replica.Payload{nil, replica.NopPayload(), {}, cmds} {
		got, err := PayloadFromProto(PayloadToProto(p))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(p) {
			t.Errorf("payload %v came back as %v", p, got)
		}
	}
}

func TestPayloadFromProto_Rejects(t *testing.T) {
	for name, pp := range map[string]*epaxospb.Payload{
		"nop with commands":   {Nop: true, Commands: []*epaxospb.Command{{Access: epaxospb.Access_READ}}},
		"unknown access":      {Commands: []*epaxospb.Command{{Access: 0}}},
		"access out of range": {Commands: []*epaxospb.Command{{Access: 99}}},
		"nil command":         {Commands: []*epaxospb.Command{nil}},
	} {
		if p, err := PayloadFromProto(pp); err == nil {
			t.Errorf("%s: accepted as %v", name, p)
		}
	}
}
