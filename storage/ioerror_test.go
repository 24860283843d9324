package storage

import (
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/epaxosd/epaxosd/replica"
)

// A failed WAL write or sync makes Save fail, and the store stay failed: the
// replica must not go on as if the records were durable.
func TestStore_SaveFailsLoudlyOnIOError(t *testing.T) {
	for name, kind := range map[string]errorfs.OpKind{"write": errorfs.OpFileWrite, "sync": errorfs.OpFileSync} {
		t.Run(name, func(t *testing.T) {
			inj := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
				if strings.HasSuffix(op.Path, ".log") && (op.Kind == kind || kind == errorfs.OpFileSync && op.Kind == errorfs.OpFileSyncData) {
					return errorfs.ErrInjected
				}
				return nil
			})}
			fs := errorfs.Wrap(vfs.NewMem(), inj)
			s := mustOpen(t, fs, testDir)
			recs := everyShape()
			mustSave(t, s, recs[:1], nil)

			inj.On()
			err := s.Save(recs[1:], []replica.InstanceID{recs[1].ID})
			if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), testDir) ||
				!strings.Contains(err.Error(), "injected error") {
				t.Fatalf("Save with a failing WAL: err = %v, want ErrFailed naming %s and the cause", err, testDir)
			}
			t.Log(err)
			inj.Off()
			// The store stays failed even once the disk recovers.
			if err := s.Save(recs[:1], nil); !errors.Is(err, ErrFailed) {
				t.Fatalf("Save after a failure: %v", err)
			}
			if _, err := s.Load(); !errors.Is(err, ErrFailed) {
				t.Fatalf("Load after a failure: %v", err)
			}
			_ = s.Close()
		})
	}
}
