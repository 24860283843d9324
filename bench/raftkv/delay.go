package raftkv

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Emulated wide-area delay (Config.Delay), for benchmarks on one machine.
//
// A node delays the connections it dials: its Raft connections to a peer
// and the gRPC connection over which it forwards client requests to the
// leader. The dialing end knows which peer is at the other end, so it
// delays both directions there: the bytes it writes wait out the delay
// before they reach the socket, and the bytes it receives wait it out
// before Read returns them. Every byte between two nodes is therefore
// delayed once each way, and a round trip over a connection takes twice the
// delay. Accepted connections are left alone: the peer that dialed them
// delays them, and a node's own clients (local to its site) are not
// delayed at all. Give every node the delays of the same (symmetric)
// matrix.

const (
	// delayChunks bounds the chunks waiting out their delay in each
	// direction of one connection; a full queue makes Write wait, and stops
	// reading from the socket (TCP flow control then holds the peer back).
	delayChunks = 256
	// delayReadSize is the most bytes one read from the socket takes.
	delayReadSize = 64 << 10
)

// ParseDelays parses "ID=DURATION,..." such as "n2=30ms,n3=35.5ms".
func ParseDelays(s string) (map[string]time.Duration, error) {
	m := make(map[string]time.Duration)
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, ds, ok := strings.Cut(part, "=")
		id, ds = strings.TrimSpace(id), strings.TrimSpace(ds)
		if !ok || id == "" {
			return nil, fmt.Errorf("delay %q: want ID=DURATION", part)
		}
		if _, dup := m[id]; dup {
			return nil, fmt.Errorf("delay for %q given twice", id)
		}
		d, err := time.ParseDuration(ds)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("delay %q: want a duration of at least 0 such as 30ms", part)
		}
		m[id] = d
	}
	return m, nil
}

// chunk is a piece of a delayed byte stream: bytes written or received at
// one time, or, received, the end of the stream (err).
type chunk struct {
	b   []byte
	due time.Time
	err error
}

// delayConn delays both directions of a connection by delay (see above).
// It has one goroutine and one timer per direction: send writes chunks to
// the socket once due, receive reads the socket into chunks.
//
// Deadlines bound what the caller waits for (Write for room in the queue,
// Read for the next bytes to be due); they are not passed to the socket,
// whose reader runs regardless of the caller. Close drops the bytes still
// waiting out their delay.
type delayConn struct {
	net.Conn
	delay time.Duration

	out chan chunk // written, waiting to be sent
	in  chan chunk // received, waiting to be read

	closed    chan struct{}
	closeOnce sync.Once
	sendErr   error // set by send before it closes failed
	failed    chan struct{}

	rmu     sync.Mutex // serializes Read and guards what follows
	next    chunk      // taken from in, not yet due, if pending
	pending bool
	rest    []byte // due and partly read
	readErr error  // the end of the stream, once due
	rtimer  *time.Timer

	wmu sync.Mutex // serializes Write, so chunks keep the callers' order

	rd, wd *deadline
}

func newDelayConn(c net.Conn, delay time.Duration) *delayConn {
	d := &delayConn{
		Conn:   c,
		delay:  delay,
		out:    make(chan chunk, delayChunks),
		in:     make(chan chunk, delayChunks),
		closed: make(chan struct{}),
		failed: make(chan struct{}),
		rd:     newDeadline(),
		wd:     newDeadline(),
	}
	go d.send()
	go d.receive()
	return d
}

// send writes each chunk to the socket once it is due.
func (d *delayConn) send() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var c chunk
		select {
		case c = <-d.out:
		case <-d.closed:
			return
		}
		for wait := time.Until(c.due); wait > 0; wait = time.Until(c.due) {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-d.closed:
				timer.Stop()
				return
			}
		}
		if _, err := d.Conn.Write(c.b); err != nil {
			d.sendErr = err
			close(d.failed)
			d.Close()
			return
		}
	}
}

// receive reads the socket into chunks due delay after they arrived.
func (d *delayConn) receive() {
	buf := make([]byte, delayReadSize)
	for {
		n, err := d.Conn.Read(buf)
		due := time.Now().Add(d.delay)
		if n > 0 {
			select {
			case d.in <- chunk{b: append([]byte(nil), buf[:n]...), due: due}:
			case <-d.closed:
				return
			}
		}
		if err != nil {
			select {
			case d.in <- chunk{err: err, due: due}:
			case <-d.closed:
			}
			return
		}
	}
}

// Write queues a copy of b to be sent once the delay has passed.
func (d *delayConn) Write(b []byte) (int, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	c := chunk{b: append([]byte(nil), b...), due: time.Now().Add(d.delay)}
	select {
	case <-d.failed:
		return 0, d.sendErr
	case <-d.closed:
		return 0, net.ErrClosed
	case <-d.wd.done():
		return 0, os.ErrDeadlineExceeded
	default:
	}
	select {
	case d.out <- c:
		return len(b), nil
	case <-d.failed:
		return 0, d.sendErr
	case <-d.closed:
		return 0, net.ErrClosed
	case <-d.wd.done():
		return 0, os.ErrDeadlineExceeded
	}
}

// Read returns received bytes once their delay has passed.
func (d *delayConn) Read(b []byte) (int, error) {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if len(d.rest) > 0 {
		n := copy(b, d.rest)
		d.rest = d.rest[n:]
		return n, nil
	}
	if d.readErr != nil {
		return 0, d.readErr
	}
	select {
	case <-d.closed:
		return 0, net.ErrClosed
	case <-d.rd.done():
		return 0, os.ErrDeadlineExceeded
	default:
	}
	if !d.pending {
		select {
		case d.next = <-d.in:
			d.pending = true
		case <-d.closed:
			return 0, net.ErrClosed
		case <-d.rd.done():
			return 0, os.ErrDeadlineExceeded
		}
	}
	for wait := time.Until(d.next.due); wait > 0; wait = time.Until(d.next.due) {
		if d.rtimer == nil {
			d.rtimer = time.NewTimer(wait)
		} else {
			d.rtimer.Reset(wait)
		}
		select {
		case <-d.rtimer.C:
		case <-d.closed:
			d.rtimer.Stop()
			return 0, net.ErrClosed
		case <-d.rd.done():
			d.rtimer.Stop()
			return 0, os.ErrDeadlineExceeded
		}
	}
	c := d.next
	d.next, d.pending = chunk{}, false
	if c.err != nil {
		d.readErr = c.err
		return 0, c.err
	}
	n := copy(b, c.b)
	d.rest = c.b[n:]
	return n, nil
}

// Close closes the connection, dropping what waits out its delay.
func (d *delayConn) Close() error {
	err := net.ErrClosed
	d.closeOnce.Do(func() {
		close(d.closed)
		err = d.Conn.Close()
	})
	return err
}

func (d *delayConn) SetDeadline(t time.Time) error {
	d.rd.set(t)
	d.wd.set(t)
	return nil
}

func (d *delayConn) SetReadDeadline(t time.Time) error {
	d.rd.set(t)
	return nil
}

func (d *delayConn) SetWriteDeadline(t time.Time) error {
	d.wd.set(t)
	return nil
}

// deadline is a deadline that waiters can select on: the channel that
// done returns is closed once the deadline has passed.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	gen   uint64        // counts set calls, so that a stale timer does nothing
	ch    chan struct{} // closed once the deadline has passed
}

func newDeadline() *deadline { return &deadline{ch: make(chan struct{})} }

// set moves the deadline to t; the zero t means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	passed := isClosed(d.ch)
	wait := time.Until(t)
	if !t.IsZero() && wait <= 0 {
		if !passed {
			close(d.ch)
		}
		return
	}
	if passed {
		d.ch = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen && !isClosed(d.ch) {
			close(d.ch)
		}
	})
}

func (d *deadline) done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
