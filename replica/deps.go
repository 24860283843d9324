package replica

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Deps is a set of instance ids in two parts: a horizon, which holds every
// instance (q, s) with s ≤ Horizon(q), and the ids above it, listed. It is
// an exact set, so every rule of the protocol that tests membership (the
// fast path's D_q = initDep, Validate's id ∈ dep[id'] and id' ∉ D,
// execution) reads it as the paper reads dep; only its encoding is
// compact. A Deps value is immutable: methods return new sets and never
// modify their receiver or arguments.
//
// Why a horizon. With explicit sets a command on a key depends on every
// earlier command on it, so deps, messages and records grow with the key's
// history. Instead a coordinator puts its executed prefix into D: the
// horizon of submit(c) is, per column q, the highest slot h such that this
// replica has executed (or skipped, for a no-op) every instance (q, 1..h)
// (executor.frontier). Replicas add to D only interfering instances above
// D's horizon, so sets stay as small as the number of commands in flight.
//
// Why it is safe (the argument epaxos-star.md §4 asks for before deps are
// made smaller):
//
//  1. The horizon only adds ids: D still contains every instance that
//     interferes with c and is known to the coordinator, and a PreAcceptOK
//     still adds every interfering instance the replica knows that is not
//     in D. Every step of the paper's proofs that uses "p knew id', so id'
//     ∈ dep" holds as written, and membership is decided exactly, without
//     knowing the commands of the instances under the horizon.
//  2. Extra dependencies never break agreement or visibility (Visibility
//     needs one of two interfering committed instances in the other's deps;
//     more deps only help), and the paper allows any D ⊇ the interfering
//     ones: the recovery rules only test membership.
//  3. Horizon edges are never on a cycle of the dependency graph. If x is
//     under the horizon of id, the coordinator of id had executed x before
//     proposing id, so x and everything x reaches were committed, with
//     their deps fixed, before id existed; no committed deps fixed before
//     id existed can contain id (its slot was never sent before it was
//     persisted and proposed, and a horizon covering id would need id
//     executed first). So the strongly connected components are those of
//     the explicit edges, every replica orders them the same way, and the
//     executor can treat a horizon as a precondition: every instance under
//     it executed here before the component that needs it (no walk over
//     non-interfering edges; epaxos-notes.md, Execution).
//  4. Every slot under a horizon is a real instance that commits: a
//     coordinator's own column is gap-free (slots are persisted in order
//     before any message names them), and the horizon is a prefix that the
//     coordinator has seen committed. A replica that has not seen one of
//     them waits on it exactly as on a missing explicit dependency.
//
// Horizons are chosen by coordinators only: PreAcceptOK, Accept, Commit,
// recovery and Validate carry the horizon of the D the coordinator chose,
// so replies to one PreAccept always share it and Union is exact for them.
type Deps struct {
	horizon []uint64     // per column; trailing zeros trimmed; nil if none
	ids     []InstanceID // sorted by InstanceID.Less, unique, each above the horizon
}

// NewDeps returns the set of the given ids, with no horizon.
func NewDeps(ids ...InstanceID) Deps {
	return NewDepsWithHorizon(nil, ids...)
}

// NewDepsWithHorizon returns the set holding every instance (q, s) with
// s ≤ horizon[q] and the given ids. Neither argument is retained.
func NewDepsWithHorizon(horizon []uint64, ids ...InstanceID) Deps {
	h := trimHorizon(horizon)
	d := Deps{horizon: h}
	if len(ids) == 0 {
		return d
	}
	out := make([]InstanceID, 0, len(ids))
	for _, id := range ids {
		if !d.underHorizon(id) {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	uniq := out[:0]
	for i, id := range out {
		if i == 0 || id != out[i-1] {
			uniq = append(uniq, id)
		}
	}
	if len(uniq) > 0 {
		d.ids = uniq
	}
	return d
}

// trimHorizon returns a copy of h without trailing zeros, or nil.
func trimHorizon(h []uint64) []uint64 {
	n := len(h)
	for n > 0 && h[n-1] == 0 {
		n--
	}
	if n == 0 {
		return nil
	}
	return append([]uint64(nil), h[:n]...)
}

// Horizon returns the highest slot of column q that the horizon holds
// (every slot 1..Horizon(q)); 0 if it holds none.
func (d Deps) Horizon(q ReplicaID) uint64 {
	if int(q) < len(d.horizon) {
		return d.horizon[q]
	}
	return 0
}

// HorizonColumns returns the number of columns with a horizon entry; the
// horizon of every column at or above it is 0.
func (d Deps) HorizonColumns() int { return len(d.horizon) }

// IDs returns the listed ids above the horizon, sorted. The caller must not
// modify the result.
func (d Deps) IDs() []InstanceID { return d.ids }

// Len returns the number of listed ids (not counting the horizon).
func (d Deps) Len() int { return len(d.ids) }

// IsEmpty reports whether d is the empty set.
func (d Deps) IsEmpty() bool { return len(d.ids) == 0 && len(d.horizon) == 0 }

func (d Deps) underHorizon(id InstanceID) bool {
	return id.Slot <= d.Horizon(id.Replica)
}

// Contains reports whether id is in d.
func (d Deps) Contains(id InstanceID) bool {
	if d.underHorizon(id) {
		return true
	}
	i := sort.Search(len(d.ids), func(i int) bool { return !d.ids[i].Less(id) })
	return i < len(d.ids) && d.ids[i] == id
}

// Union returns d ∪ o. When d and o have the same horizon (always, for the
// sets the protocol unites: replies to one PreAccept) the result is exact.
// Otherwise it takes the higher horizon of each column, a superset that is
// still made only of instances some coordinator had executed, which point
// 2 and 3 of the type's comment allow.
func (d Deps) Union(o Deps) Deps {
	var h []uint64
	switch {
	case slices.Equal(d.horizon, o.horizon):
		h = d.horizon
	default:
		h = make([]uint64, max(len(d.horizon), len(o.horizon)))
		for i := range h {
			h[i] = max(d.Horizon(ReplicaID(i)), o.Horizon(ReplicaID(i)))
		}
	}
	out := Deps{horizon: trimHorizon(h)}
	ids := make([]InstanceID, 0, len(d.ids)+len(o.ids))
	i, j := 0, 0
	for i < len(d.ids) || j < len(o.ids) {
		var next InstanceID
		switch {
		case j == len(o.ids) || i < len(d.ids) && d.ids[i].Less(o.ids[j]):
			next = d.ids[i]
			i++
		case i == len(d.ids) || o.ids[j].Less(d.ids[i]):
			next = o.ids[j]
			j++
		default: // equal
			next = d.ids[i]
			i++
			j++
		}
		if !out.underHorizon(next) {
			ids = append(ids, next)
		}
	}
	if len(ids) > 0 {
		out.ids = ids
	}
	return out
}

// Equal reports whether d and o are the same set. Both are normalized (no
// listed id under the horizon, trailing zeros trimmed), so equal sets have
// equal parts.
func (d Deps) Equal(o Deps) bool {
	if !slices.Equal(d.horizon, o.horizon) || len(d.ids) != len(o.ids) {
		return false
	}
	for i := range d.ids {
		if d.ids[i] != o.ids[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy of d that shares no memory with it.
func (d Deps) Clone() Deps {
	c := Deps{horizon: append([]uint64(nil), d.horizon...)}
	if len(c.horizon) == 0 {
		c.horizon = nil
	}
	if len(d.ids) > 0 {
		c.ids = append([]InstanceID(nil), d.ids...)
	}
	return c
}

func (d Deps) String() string {
	var b strings.Builder
	b.WriteByte('{')
	if len(d.horizon) > 0 {
		b.WriteString("≤[")
		for i, s := range d.horizon {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprint(&b, s)
		}
		b.WriteByte(']')
	}
	for i, id := range d.ids {
		if i > 0 || len(d.horizon) > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(id.String())
	}
	b.WriteByte('}')
	return b.String()
}
