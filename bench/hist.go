package bench

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Bounds of the latency histograms, in microseconds.
const (
	histLowest  = 1                  // 1 µs
	histHighest = 3600 * 1000 * 1000 // one hour
	histDigits  = 3                  // significant digits: relative error ≤ 0.1%
)

// histogram is a latency histogram in microseconds. It is not safe for
// concurrent use.
type histogram struct {
	h *hdrhistogram.Histogram
}

func newHistogram() *histogram {
	return &histogram{h: hdrhistogram.New(histLowest, histHighest, histDigits)}
}

// record records d, clamped to the histogram's range.
func (h *histogram) record(d time.Duration) {
	us := d.Microseconds()
	us = max(us, histLowest)
	us = min(us, histHighest)
	_ = h.h.RecordValue(us) // in range: cannot fail
}

func (h *histogram) count() int64 { return h.h.TotalCount() }

func (h *histogram) reset() { h.h.Reset() }

// summary returns the percentiles, maximum and mean; all zero if empty.
func (h *histogram) summary() Latency {
	if h.h.TotalCount() == 0 {
		return Latency{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Latency{
		P50:  us(h.h.ValueAtQuantile(50)),
		P90:  us(h.h.ValueAtQuantile(90)),
		P99:  us(h.h.ValueAtQuantile(99)),
		P999: us(h.h.ValueAtQuantile(99.9)),
		Max:  us(h.h.Max()),
		Mean: time.Duration(h.h.Mean() * float64(time.Microsecond)),
	}
}
