package config

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
)

// clusterIDVersion is hashed first, so that a future change to what
// ClusterID covers yields ids that cannot collide with today's.
const clusterIDVersion = "epaxosd cluster v1"

// ClusterID returns a short hex id of the replica set: a hash of every
// replica's PID, name and address, independent of the order of c.Replicas.
// Replicas compare it to refuse peers, and data directories, that belong to
// another cluster; any change to a replica's PID, name or address, or to the
// set of replicas, changes it. No other setting affects it.
func (c *Config) ClusterID() string {
	rs := slices.Clone(c.Replicas)
	slices.SortFunc(rs, func(a, b Replica) int {
		return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Address, b.Address))
	})
	// Every field is length-prefixed, so no two replica sets encode alike.
	buf := appendString(nil, clusterIDVersion)
	buf = binary.AppendUvarint(buf, uint64(len(rs)))
	for _, r := range rs {
		buf = binary.AppendUvarint(buf, uint64(r.PID))
		buf = appendString(buf, r.Name)
		buf = appendString(buf, r.Address)
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:8])
}

// appendString appends s to buf, prefixed by its length.
func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}
