package replica

import "sort"

// interference indexes known commands by key and by client session so that
// a replica can compute {id' | cmd[id'] ⋈ c} (Command.Interferes) above a
// horizon without scanning every instance. Reads commute with reads: a read
// depends only on writes and deletes of its key; a write or delete depends
// on every command of its key; every command depends on its session's
// earlier commands. Each list is kept per column, sorted by slot, so that
// the instances above a horizon are found by binary search: the cost of a
// query is the size of its answer plus O(N log history).
type interference struct {
	n        int
	keys     map[string]*keyHistory
	sessions map[uint64]columns // client id -> instances with its commands
}

type keyHistory struct {
	writes columns // instances that write or delete the key
	reads  columns // instances that only read the key
}

// columns holds, per column, the sorted slots of a set of instances.
type columns [][]uint64

func newInterference(n int) *interference {
	return &interference{n: n, keys: make(map[string]*keyHistory), sessions: make(map[uint64]columns)}
}

// add records that instance id carries payload p. It is called once per
// instance, when its command first becomes known; no-ops are not indexed.
func (x *interference) add(id InstanceID, p *Payload) {
	if p == nil || p.Nop || int(id.Replica) >= x.n {
		return
	}
	for _, c := range p.Commands {
		h := x.keys[c.Key]
		if h == nil {
			h = &keyHistory{writes: make(columns, x.n), reads: make(columns, x.n)}
			x.keys[c.Key] = h
		}
		if c.Access == Read {
			h.reads.insert(id)
		} else {
			h.writes.insert(id)
		}
		if c.ClientID != 0 {
			s := x.sessions[c.ClientID]
			if s == nil {
				s = make(columns, x.n)
				x.sessions[c.ClientID] = s
			}
			s.insert(id)
		}
	}
}

// insert adds id's slot to its column, keeping it sorted and unique (a
// batch touching one key several times indexes it once). Slots mostly
// arrive in order, so this is usually an append.
func (cs columns) insert(id InstanceID) {
	col := cs[id.Replica]
	n := len(col)
	switch {
	case n == 0 || col[n-1] < id.Slot:
		cs[id.Replica] = append(col, id.Slot)
	case col[n-1] == id.Slot:
	default:
		i := sort.Search(n, func(i int) bool { return col[i] >= id.Slot })
		if col[i] == id.Slot {
			return
		}
		col = append(col, 0)
		copy(col[i+1:], col[i:])
		col[i] = id.Slot
		cs[id.Replica] = col
	}
}

// above appends to out the instances of cs above horizon h, except self.
func (cs columns) above(out []InstanceID, h Deps, self InstanceID) []InstanceID {
	for q, col := range cs {
		from := h.Horizon(ReplicaID(q))
		i := sort.Search(len(col), func(i int) bool { return col[i] > from })
		for _, s := range col[i:] {
			if id := (InstanceID{Replica: ReplicaID(q), Slot: s}); id != self {
				out = append(out, id)
			}
		}
	}
	return out
}

// conflicts returns the instances other than self whose command interferes
// with p and that are not under the horizon of h (h's listed ids are not
// excluded), as a set without horizon.
func (x *interference) conflicts(p *Payload, self InstanceID, h Deps) Deps {
	if p == nil || p.Nop {
		return Deps{}
	}
	var out []InstanceID
	for _, c := range p.Commands {
		if c.ClientID != 0 {
			out = x.sessions[c.ClientID].above(out, h, self)
		}
		kh := x.keys[c.Key]
		if kh == nil {
			continue
		}
		out = kh.writes.above(out, h, self)
		if c.Access != Read {
			out = kh.reads.above(out, h, self)
		}
	}
	return NewDeps(out...)
}
