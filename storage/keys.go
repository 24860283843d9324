package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/epaxosd/epaxosd/replica"
)

// Key prefixes (doc.go, "On-disk format"). Each kind of key lives in its own
// range [prefix, prefix+1) so it can be iterated alone.
const (
	prefixMeta     = 'm'
	prefixCommand  = 'c'
	prefixRecord   = 'i'
	prefixReserved = 'r'
	prefixExecuted = 'x'

	recordKeyLen   = 1 + 4 + 8
	executedKeyLen = 1 + 8
)

var (
	metaKey     = []byte{prefixMeta}
	reservedKey = []byte{prefixReserved}

	executedLower = []byte{prefixExecuted}
	executedUpper = []byte{prefixExecuted + 1}
)

// appendRecordKey appends the key of instance id's record to dst.
func appendRecordKey(dst []byte, id replica.InstanceID) []byte {
	return appendInstanceKey(dst, prefixRecord, id)
}

// appendCommandKey appends the key of instance id's command to dst.
func appendCommandKey(dst []byte, id replica.InstanceID) []byte {
	return appendInstanceKey(dst, prefixCommand, id)
}

func appendInstanceKey(dst []byte, prefix byte, id replica.InstanceID) []byte {
	dst = append(dst, prefix)
	dst = binary.BigEndian.AppendUint32(dst, uint32(id.Replica))
	return binary.BigEndian.AppendUint64(dst, id.Slot)
}

// parseRecordKey returns the instance id of a record key.
func parseRecordKey(k []byte) (replica.InstanceID, bool) {
	return parseInstanceKey(k, prefixRecord)
}

// parseCommandKey returns the instance id of a command key.
func parseCommandKey(k []byte) (replica.InstanceID, bool) {
	return parseInstanceKey(k, prefixCommand)
}

func parseInstanceKey(k []byte, prefix byte) (replica.InstanceID, bool) {
	if len(k) != recordKeyLen || k[0] != prefix {
		return replica.InstanceID{}, false
	}
	return replica.InstanceID{
		Replica: replica.ReplicaID(binary.BigEndian.Uint32(k[1:5])),
		Slot:    binary.BigEndian.Uint64(k[5:]),
	}, true
}

// appendExecutedKey appends the key of executed-log position pos to dst.
func appendExecutedKey(dst []byte, pos uint64) []byte {
	dst = append(dst, prefixExecuted)
	return binary.BigEndian.AppendUint64(dst, pos)
}

// parseExecutedKey returns the position of an executed-log key.
func parseExecutedKey(k []byte) (uint64, bool) {
	if len(k) != executedKeyLen || k[0] != prefixExecuted {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}

// describeKey names a key in error messages: "record 1.7", "executed
// position 12", "meta", or the raw bytes of a key that parses as none.
func describeKey(k []byte) string {
	if id, ok := parseRecordKey(k); ok {
		return "record " + id.String()
	}
	if id, ok := parseCommandKey(k); ok {
		return "command " + id.String()
	}
	if pos, ok := parseExecutedKey(k); ok {
		return fmt.Sprintf("executed position %d", pos)
	}
	if string(k) == string(metaKey) {
		return "meta"
	}
	if string(k) == string(reservedKey) {
		return "reserved slots"
	}
	return fmt.Sprintf("key %x", k)
}
