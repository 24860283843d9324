package storage

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/epaxosd/epaxosd/replica"
)

// This file is Save's hot path: it writes the protobuf encoding of
// storagepb.InstanceRecord, epaxospb.Payload and storagepb.Executed straight from the replica
// types into a reused buffer, with no intermediate messages and no
// allocations. The bytes are exactly what proto.Marshal produces for the
// messages recordToProto and commandToProto (convert.go) build; TestAppendRecord_MatchesProtoMarshal
// holds the two together, and Load decodes with the generated code.

// checksumLen is the size of the CRC32C that prefixes every value.
const checksumLen = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	errChecksum = errors.New("checksum mismatch")
	errShort    = errors.New("value shorter than its checksum")
)

// beginValue reserves the checksum in front of a value that will be appended
// to dst; sealValue fills it in once the body is written.
func beginValue(dst []byte) []byte { return append(dst, 0, 0, 0, 0) }

// sealValue writes the checksum of key ‖ body into val[:4], where body is
// val[4:]. Covering the key catches a value stored under the wrong key.
func sealValue(key, val []byte) {
	sum := crc32.Update(crc32.Update(0, castagnoli, key), castagnoli, val[checksumLen:])
	binary.BigEndian.PutUint32(val, sum)
}

// openValue verifies a value's checksum and returns its body, which shares
// memory with val.
func openValue(key, val []byte) ([]byte, error) {
	if len(val) < checksumLen {
		return nil, errShort
	}
	body := val[checksumLen:]
	sum := crc32.Update(crc32.Update(0, castagnoli, key), castagnoli, body)
	if sum != binary.BigEndian.Uint32(val) {
		return nil, errChecksum
	}
	return body, nil
}

// Field numbers of proto/storage.proto and proto/epaxos.proto. All are below
// 16, so every tag is one byte.
const (
	fRecordCommand     = 1
	fRecordInitCommand = 2
	fRecordDeps        = 3
	fRecordInitDeps    = 4
	fRecordPhase       = 5
	fRecordBal         = 6
	fRecordAbal        = 7
	fRecordInitIsCmd   = 8
	fRecordCmdApart    = 9

	fExecutedInstance = 1

	fPayloadNop      = 1
	fPayloadCommands = 2

	fCommandClientID = 1
	fCommandSeq      = 2
	fCommandAccess   = 3
	fCommandKey      = 4
	fCommandValue    = 5

	fIDReplica = 1
	fIDSlot    = 2

	fDepsReplicas = 1
	fDepsSlots    = 2
	fDepsHorizon  = 3

	tagLen = 1
)

// varintField and bytesField return the encoded size of a field; the field
// number only documents the call, since every tag here is one byte.
func varintField(_ protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return tagLen + protowire.SizeVarint(v)
}

func bytesField(_ protowire.Number, l int) int { return tagLen + protowire.SizeBytes(l) }

func appendVarintField(b []byte, n protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendLenPrefix(b []byte, n protowire.Number, l int) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(l))
}

func commandSize(c *replica.Command) int {
	n := varintField(fCommandClientID, c.ClientID) +
		varintField(fCommandSeq, c.Seq) +
		varintField(fCommandAccess, uint64(c.Access))
	if len(c.Key) > 0 {
		n += bytesField(fCommandKey, len(c.Key))
	}
	if len(c.Value) > 0 {
		n += bytesField(fCommandValue, len(c.Value))
	}
	return n
}

func appendCommand(b []byte, c *replica.Command) []byte {
	b = appendVarintField(b, fCommandClientID, c.ClientID)
	b = appendVarintField(b, fCommandSeq, c.Seq)
	b = appendVarintField(b, fCommandAccess, uint64(c.Access))
	if len(c.Key) > 0 {
		b = appendLenPrefix(b, fCommandKey, len(c.Key))
		b = append(b, c.Key...)
	}
	if len(c.Value) > 0 {
		b = appendLenPrefix(b, fCommandValue, len(c.Value))
		b = append(b, c.Value...)
	}
	return b
}

func payloadSize(p *replica.Payload) int {
	n := 0
	if p.Nop {
		n += tagLen + 1
	}
	for i := range p.Commands {
		n += bytesField(fPayloadCommands, commandSize(&p.Commands[i]))
	}
	return n
}

// appendPayloadField appends a non-nil payload as field n; nil (⊥) is absent.
func appendPayloadField(b []byte, n protowire.Number, p *replica.Payload) []byte {
	if p == nil {
		return b
	}
	b = appendLenPrefix(b, n, payloadSize(p))
	return appendCommandValue(b, p)
}

// depsColumns returns the sizes of the packed replica, slot and horizon
// columns.
func depsColumns(d replica.Deps) (replicas, slots, horizon int) {
	for _, id := range d.IDs() {
		replicas += protowire.SizeVarint(uint64(id.Replica))
		slots += protowire.SizeVarint(id.Slot)
	}
	for q := range d.HorizonColumns() {
		horizon += protowire.SizeVarint(d.Horizon(replica.ReplicaID(q)))
	}
	return replicas, slots, horizon
}

// packedField is the size of a packed repeated field of l bytes: absent
// when empty.
func packedField(n protowire.Number, l int) int {
	if l == 0 {
		return 0
	}
	return bytesField(n, l)
}

// appendDepsField appends a non-empty set as field n; the empty set is absent.
func appendDepsField(b []byte, n protowire.Number, d replica.Deps) []byte {
	if d.IsEmpty() {
		return b
	}
	rs, ss, hs := depsColumns(d)
	b = appendLenPrefix(b, n, packedField(fDepsReplicas, rs)+packedField(fDepsSlots, ss)+packedField(fDepsHorizon, hs))
	if ids := d.IDs(); len(ids) > 0 {
		b = appendLenPrefix(b, fDepsReplicas, rs)
		for _, id := range ids {
			b = protowire.AppendVarint(b, uint64(id.Replica))
		}
		b = appendLenPrefix(b, fDepsSlots, ss)
		for _, id := range ids {
			b = protowire.AppendVarint(b, id.Slot)
		}
	}
	if hs > 0 {
		b = appendLenPrefix(b, fDepsHorizon, hs)
		for q := range d.HorizonColumns() {
			b = protowire.AppendVarint(b, d.Horizon(replica.ReplicaID(q)))
		}
	}
	return b
}

// appendRecord appends the encoding of storagepb.InstanceRecord for rec,
// whose command, if any, is stored apart (appendCommandValue).
func appendRecord(b []byte, rec *replica.InstanceRecord) []byte {
	// initCmd usually is cmd (a pre-accepted record, and its commit): the
	// payload, the records' largest part, is stored once (field 8).
	sameInit := initIsCommand(rec)
	if !sameInit {
		b = appendPayloadField(b, fRecordInitCommand, rec.InitCommand)
	}
	b = appendDepsField(b, fRecordDeps, rec.Deps)
	b = appendDepsField(b, fRecordInitDeps, rec.InitDeps)
	b = appendVarintField(b, fRecordPhase, uint64(rec.Phase))
	b = appendVarintField(b, fRecordBal, uint64(rec.Bal))
	b = appendVarintField(b, fRecordAbal, uint64(rec.Abal))
	if sameInit {
		b = appendVarintField(b, fRecordInitIsCmd, 1)
	}
	if rec.Command != nil {
		b = appendVarintField(b, fRecordCmdApart, 1)
	}
	return b
}

// appendCommandValue appends the encoding of epaxos.v1.Payload for a
// record's non-nil command, the value of its command key.
func appendCommandValue(b []byte, p *replica.Payload) []byte {
	if p.Nop {
		b = protowire.AppendTag(b, fPayloadNop, protowire.VarintType)
		b = append(b, 1)
	}
	for i := range p.Commands {
		c := &p.Commands[i]
		b = appendLenPrefix(b, fPayloadCommands, commandSize(c))
		b = appendCommand(b, c)
	}
	return b
}

// appendExecuted appends the encoding of storagepb.Executed for id.
func appendExecuted(b []byte, id replica.InstanceID) []byte {
	n := varintField(fIDReplica, uint64(id.Replica)) + varintField(fIDSlot, id.Slot)
	b = appendLenPrefix(b, fExecutedInstance, n)
	b = appendVarintField(b, fIDReplica, uint64(id.Replica))
	return appendVarintField(b, fIDSlot, id.Slot)
}
