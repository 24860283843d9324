package daemon

import "github.com/epaxosd/epaxosd/replica"

// Storage makes instance records durable. Save must not return before the
// records are on stable storage: the core loop sends the messages that
// promise them as soon as it returns.
type Storage interface {
	Save(records []replica.InstanceRecord) error
	Close() error
}

// volatileStorage keeps nothing: a replica that stops loses its state and
// must not rejoin its cluster as if it had kept it. It is what `epaxosd dev`
// and this milestone's agent use until the durable store lands.
type volatileStorage struct{}

func (volatileStorage) Save([]replica.InstanceRecord) error { return nil }
func (volatileStorage) Close() error                        { return nil }
