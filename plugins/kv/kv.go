// Package kv is a replicated in-memory key-value store, the simplest useful
// epaxosd state machine. It holds nothing outside memory: epaxosd rebuilds it
// by replaying commands when the plugin restarts.
//
//	read k      returns the value of k, empty if k is absent
//	write k v   stores v under k and returns empty
//	delete k    removes k and returns empty
//
// An absent key and a key holding an empty value read the same.
package kv

import (
	"bytes"
	"fmt"

	"github.com/epaxosd/epaxosd/plugin"
)

// Store is the key-value state machine. It is not safe for concurrent use,
// which plugin.StateMachine does not require.
type Store struct {
	data map[string][]byte
}

var _ plugin.StateMachine = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{data: make(map[string][]byte)}
}

// Apply applies cmds in order and returns one result per command.
func (s *Store) Apply(cmds []plugin.Command) []plugin.Result {
	results := make([]plugin.Result, len(cmds))
	for i, c := range cmds {
		results[i] = s.apply(c)
	}
	return results
}

func (s *Store) apply(c plugin.Command) plugin.Result {
	switch c.Access {
	case plugin.Read:
		// The stored slice is never modified, only replaced, so the
		// result may alias it.
		return plugin.Result{Value: s.data[string(c.Key)]}
	case plugin.Write:
		s.data[string(c.Key)] = bytes.Clone(c.Value) // cmds must not be retained
		return plugin.Result{}
	case plugin.Delete:
		delete(s.data, string(c.Key))
		return plugin.Result{}
	}
	return plugin.Result{Error: fmt.Sprintf("kv: unsupported access %v", c.Access)}
}
