package replica

// interference indexes known commands by key and by client session so that
// a replica can compute {id' | cmd[id'] ⋈ c} (Command.Interferes) without
// scanning every instance. Reads commute with reads: a read depends only on
// writes and deletes of its key; a write or delete depends on every command
// of its key; every command depends on its session's earlier commands.
type interference struct {
	keys     map[string]*keyHistory
	sessions map[uint64][]InstanceID // client id -> instances with its commands
}

type keyHistory struct {
	writes []InstanceID // instances that write or delete the key
	reads  []InstanceID // instances that only read the key
}

func newInterference() *interference {
	return &interference{keys: make(map[string]*keyHistory), sessions: make(map[uint64][]InstanceID)}
}

// add records that instance id carries payload p. It is called once per
// instance, when its command first becomes known; no-ops are not indexed.
func (x *interference) add(id InstanceID, p *Payload) {
	if p == nil || p.Nop {
		return
	}
	for _, c := range p.Commands {
		h := x.keys[c.Key]
		if h == nil {
			h = &keyHistory{}
			x.keys[c.Key] = h
		}
		if c.Access == Read {
			h.reads = appendOnce(h.reads, id)
		} else {
			h.writes = appendOnce(h.writes, id)
		}
		if c.ClientID != 0 {
			x.sessions[c.ClientID] = appendOnce(x.sessions[c.ClientID], id)
		}
	}
}

// appendOnce appends id unless it is already the last element (a batch
// touching one key several times indexes it once).
func appendOnce(ids []InstanceID, id InstanceID) []InstanceID {
	if n := len(ids); n > 0 && ids[n-1] == id {
		return ids
	}
	return append(ids, id)
}

// conflicts returns the instances other than self whose command interferes
// with p, as a set, keeping only those live accepts. (Replica.conflicts
// keeps instances whose command has since become a no-op; see there.)
func (x *interference) conflicts(p *Payload, self InstanceID, live func(InstanceID) bool) Deps {
	if p == nil || p.Nop {
		return nil
	}
	var out []InstanceID
	for _, c := range p.Commands {
		if c.ClientID != 0 {
			out = appendLive(out, x.sessions[c.ClientID], self, live)
		}
		h := x.keys[c.Key]
		if h == nil {
			continue
		}
		out = appendLive(out, h.writes, self, live)
		if c.Access != Read {
			out = appendLive(out, h.reads, self, live)
		}
	}
	return NewDeps(out...)
}

func appendLive(out, ids []InstanceID, self InstanceID, live func(InstanceID) bool) []InstanceID {
	for _, id := range ids {
		if id != self && live(id) {
			out = append(out, id)
		}
	}
	return out
}
