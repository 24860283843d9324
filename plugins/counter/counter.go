// Package counter is a replicated set of int64 counters, one per key, as an
// epaxosd state machine. It holds nothing outside memory: epaxosd rebuilds it
// by replaying commands when the plugin restarts.
//
//	write k n   adds the decimal integer n (optionally signed) to k's total
//	            and returns the new total, in decimal
//	read k      returns k's total in decimal, "0" if k was never written
//	delete k    resets k's total to 0 and returns empty
//
// A write whose value is not a decimal int64, or that would overflow the
// total, is an error reply and changes nothing, on every replica alike.
package counter

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/epaxosd/epaxosd/plugin"
)

// Counter is the counter state machine. It is not safe for concurrent use,
// which plugin.StateMachine does not require.
type Counter struct {
	totals map[string]int64 // absent means 0
}

var _ plugin.StateMachine = (*Counter)(nil)

// New returns a Counter with every total at 0.
func New() *Counter {
	return &Counter{totals: make(map[string]int64)}
}

// Apply applies cmds in order and returns one result per command.
func (c *Counter) Apply(cmds []plugin.Command) []plugin.Result {
	results := make([]plugin.Result, len(cmds))
	for i, cmd := range cmds {
		results[i] = c.apply(cmd)
	}
	return results
}

func (c *Counter) apply(cmd plugin.Command) plugin.Result {
	key := string(cmd.Key)
	switch cmd.Access {
	case plugin.Read:
		return plugin.Result{Value: strconv.AppendInt(nil, c.totals[key], 10)}
	case plugin.Write:
		delta, err := strconv.ParseInt(string(cmd.Value), 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			return errorf("value %s is out of the int64 range", quote(cmd.Value))
		}
		if err != nil {
			return errorf("value %s is not a decimal integer", quote(cmd.Value))
		}
		total := c.totals[key]
		sum := total + delta
		if (delta > 0 && sum < total) || (delta < 0 && sum > total) {
			return errorf("adding %d to the total %d of key %s overflows int64", delta, total, quote(cmd.Key))
		}
		c.totals[key] = sum
		return plugin.Result{Value: strconv.AppendInt(nil, sum, 10)}
	case plugin.Delete:
		delete(c.totals, key)
		return plugin.Result{}
	}
	return errorf("unsupported access %v", cmd.Access)
}

func errorf(format string, args ...any) plugin.Result {
	return plugin.Result{Error: "counter: " + fmt.Sprintf(format, args...)}
}

// quote quotes b for an error message, cut to a readable length.
func quote(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return strconv.Quote(string(b[:limit])) + "..."
	}
	return strconv.Quote(string(b))
}
