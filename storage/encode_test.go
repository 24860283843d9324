package storage

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
	"github.com/epaxosd/epaxosd/proto/storagepb"
	"github.com/epaxosd/epaxosd/replica"
)

var deterministic = proto.MarshalOptions{Deterministic: true}

// Save's hand-written encoder must produce exactly the generated code's
// encoding of storage.proto, which is what Load decodes.
func TestAppendRecord_MatchesProtoMarshal(t *testing.T) {
	recs := everyShape()
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		recs = append(recs, randRecord(r, iid(0, uint64(i+1)), 300))
	}
	for _, rec := range recs {
		want, err := deterministic.Marshal(recordToProto(&rec))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRecord(nil, &rec); !bytes.Equal(got, want) {
			t.Fatalf("record %v:\nappendRecord %x\nproto.Marshal %x", rec.ID, got, want)
		}
		if rec.Command == nil {
			continue
		}
		want, err = deterministic.Marshal(commandToProto(&rec))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendCommandValue(nil, rec.Command); !bytes.Equal(got, want) {
			t.Fatalf("command of %v:\nappendCommandValue %x\nproto.Marshal %x", rec.ID, got, want)
		}
	}
}

func TestAppendExecuted_MatchesProtoMarshal(t *testing.T) {
	for _, id := range []replica.InstanceID{iid(0, 1), iid(2, 1<<64-1), iid(1<<32-1, 300)} {
		want, _ := deterministic.Marshal(&storagepb.Executed{
			Instance: &epaxospb.InstanceID{Replica: uint32(id.Replica), Slot: id.Slot}})
		if got := appendExecuted(nil, id); !bytes.Equal(got, want) {
			t.Fatalf("executed %v: appendExecuted %x, proto.Marshal %x", id, got, want)
		}
	}
}

func TestConvert_RejectsWhatSaveCannotWrite(t *testing.T) {
	bad := map[string]*storagepb.InstanceRecord{
		"unknown phase":                   {Phase: 9},
		"nop with commands":               {Command: &epaxospb.Payload{Nop: true, Commands: []*epaxospb.Command{{Access: epaxospb.Access_READ}}}},
		"command apart, none":             {CommandStoredApart: true},
		"command apart and in the record": {CommandStoredApart: true, Command: &epaxospb.Payload{Nop: true}},
		"unknown access":                  {InitCommand: &epaxospb.Payload{Commands: []*epaxospb.Command{{Access: 0}}}},
		"deps slot 0":                     {Deps: &epaxospb.Deps{Replicas: []uint32{1}, Slots: []uint64{0}}},
		"deps columns differ":             {InitDeps: &epaxospb.Deps{Replicas: []uint32{1, 2}, Slots: []uint64{1}}},
	}
	for name, m := range bad {
		var apart *replica.Payload
		if m.Command != nil {
			apart = replica.NopPayload()
		}
		if _, err := recordFromProto(iid(0, 1), m, apart); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSealValue_ChecksumCoversKeyAndBody(t *testing.T) {
	key := appendRecordKey(nil, iid(1, 7))
	val := appendRecord(beginValue(nil), &everyShape()[1])
	sealValue(key, val)
	if _, err := openValue(key, val); err != nil {
		t.Fatal(err)
	}
	for i := range val {
		v := bytes.Clone(val)
		v[i] ^= 0x10
		if _, err := openValue(key, v); err == nil {
			t.Fatalf("flipped byte %d went unnoticed", i)
		}
	}
	if _, err := openValue(appendRecordKey(nil, iid(1, 8)), val); err == nil {
		t.Fatal("value under another key went unnoticed")
	}
}

// The encoding of a Save allocates nothing once the buffer has grown.
func TestAppendRecord_DoesNotAllocate(t *testing.T) {
	rec := everyShape()[1]
	e := &encoder{}
	allocs := testing.AllocsPerRun(100, func() {
		e.key = appendRecordKey(e.key[:0], rec.ID)
		e.val = appendRecord(beginValue(e.val[:0]), &rec)
		sealValue(e.key, e.val)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per record", allocs)
	}
}
