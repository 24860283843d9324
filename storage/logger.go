package storage

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/go-hclog"
)

// pebbleLogger routes pebble's log to hclog: its informational chatter at
// debug, its errors at error. Fatalf logs at error and then panics with a
// *fatalError instead of exiting; Store recovers that panic on its own
// goroutines and turns it into ErrFailed (doc.go, "Durability").
type pebbleLogger struct{ log hclog.Logger }

var _ pebble.Logger = pebbleLogger{}

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.log.IsDebug() {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	f := &fatalError{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			f.cause = err
			break
		}
	}
	l.log.Error("pebble fatal error", "error", f.msg)
	panic(f)
}

// fatalError is what pebble reported through Fatalf.
type fatalError struct {
	msg   string
	cause error // the first error among Fatalf's arguments, if any
}

func (f *fatalError) Error() string { return f.msg }
func (f *fatalError) Unwrap() error { return f.cause }

// eventListener logs the pebble events an operator should see. A corrupt
// block is reported here and also returned to the reader, which wraps it in
// ErrCorrupt, so it is logged rather than fatal (pebble's default).
func eventListener(log hclog.Logger) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			if errors.Is(err, pebble.ErrClosed) {
				return
			}
			log.Error("background error", "error", err)
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			log.Error("data corruption", "path", info.Path, "error", info.Details)
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			log.Warn("disk slow", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			log.Warn("write stall", "reason", info.Reason)
		},
		WriteStallEnd: func() { log.Info("write stall ended") },
	}
}
