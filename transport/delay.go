package transport

import (
	"time"

	"github.com/epaxosd/epaxosd/replica"
)

// queued is a message in a peer's send queue with the time it is due to be
// written to the peer's stream; the zero time means at once.
type queued struct {
	m   replica.Message
	due time.Time
}

// delayLine releases the messages of one peer's queue once they are due
// (Config.PeerDelay). It belongs to the peer's sender goroutine and outlives
// its streams.
//
// Each message to a peer is due the peer's one delay after its Send, so the
// queue is in due order and only its head can be waiting: the line takes it
// out of the channel and holds it, waiting on the peer's one timer. Nothing
// else is buffered: the queue stays the only bound on what waits, and a
// peer without a delay goes through unchanged.
type delayLine struct {
	queue   <-chan queued
	held    queued // taken from queue and not yet released, if holding
	holding bool
	timer   *time.Timer // made on the first wait
}

// next returns the next message as soon as it is due, waiting for one if the
// queue is empty. It reports false if done closes first; a message it was
// waiting for is then kept for the next call.
func (l *delayLine) next(done <-chan struct{}) (queued, bool) {
	if !l.holding {
		select {
		case q := <-l.queue:
			l.held, l.holding = q, true
		case <-done:
			return queued{}, false
		}
	}
	for {
		wait := time.Until(l.held.due)
		if wait <= 0 {
			break
		}
		if l.timer == nil {
			l.timer = time.NewTimer(wait)
		} else {
			l.timer.Reset(wait)
		}
		select {
		case <-l.timer.C:
		case <-done:
			l.timer.Stop()
			return queued{}, false
		}
	}
	q := l.held
	l.held, l.holding = queued{}, false
	return q, true
}

// due returns the next message if it is due at now, without waiting. It
// reports false if the queue is empty or its head is not due yet; that head
// is held for a later call. Messages without a delay are due at any now.
func (l *delayLine) due(now time.Time) (queued, bool) {
	if !l.holding {
		select {
		case q := <-l.queue:
			l.held, l.holding = q, true
		default:
			return queued{}, false
		}
	}
	if l.held.due.After(now) {
		return queued{}, false
	}
	q := l.held
	l.held, l.holding = queued{}, false
	return q, true
}
