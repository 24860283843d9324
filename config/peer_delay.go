package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// emulated_peer_delay, for benchmarks and tests only (see
// Config.EmulatedPeerDelay): a map from replica names to durations,
//
//	emulated_peer_delay = { bravo = "35ms", charlie = "70ms" }
//
// or EPAXOS_EMULATED_PEER_DELAY="bravo=35ms,charlie=70ms", which replaces
// the file's map as a whole.

// delayOrigins records where one entry of emulated_peer_delay came from.
type delayOrigins struct {
	name, delay origin
}

// durationMap decodes a map attribute from names to durations, with the
// origin of each key and value. An unusable entry is reported and left out.
func (d *decoder) durationMap(attr *hcl.Attribute) (map[string]time.Duration, map[string]delayOrigins) {
	if attr == nil {
		return nil, nil
	}
	o := fileOrigin(attr.Expr.Range())
	v, diags := attr.Expr.Value(nil)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || v.IsNull() {
		return nil, nil
	}
	pairs, diags := hcl.ExprMap(attr.Expr)
	if diags.HasErrors() {
		d.diags = append(d.diags, o.errorf("Incorrect attribute value type",
			`Inappropriate value for attribute %q: a map from replica names to durations is required, such as { bravo = "35ms" }.`, attr.Name))
		return nil, nil
	}
	m := make(map[string]time.Duration, len(pairs))
	origins := make(map[string]delayOrigins, len(pairs))
	for _, p := range pairs {
		ko, vo := fileOrigin(p.Key.Range()), fileOrigin(p.Value.Range())
		k, _ := p.Key.Value(nil) // evaluated without error above, as part of v
		k, err := convert.Convert(k, cty.String)
		if err != nil || k.IsNull() || !k.IsKnown() {
			d.diags = append(d.diags, ko.errorf("Incorrect attribute value type",
				"Inappropriate value for attribute %q: each key must be a replica name.", attr.Name))
			continue
		}
		name := k.AsString()
		if prev, dup := origins[name]; dup {
			d.diags = append(d.diags, ko.errorf("Duplicate replica in emulated_peer_delay",
				"Replica %q is given twice; the first is at %s.", name, pos(prev.name.subject)))
			continue
		}
		val, _ := p.Value.Value(nil)
		val, err = convert.Convert(val, cty.String)
		if err != nil || val.IsNull() || !val.IsKnown() {
			d.diags = append(d.diags, vo.errorf("Incorrect attribute value type",
				`Inappropriate value for attribute %q: the delay to %q must be a duration such as "35ms".`, attr.Name, name))
			continue
		}
		t, err := parseDuration(val.AsString())
		if err != nil {
			d.diags = append(d.diags, vo.errorf("Invalid duration", "%s.", err))
			continue
		}
		m[name], origins[name] = t, delayOrigins{name: ko, delay: vo}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, origins
}

// setPeerDelayEnv replaces emulated_peer_delay with the list in v,
// "NAME=DURATION,..." (spaces allowed around each part).
func setPeerDelayEnv(c *Config, s *sources, o origin, v string) error {
	m := make(map[string]time.Duration)
	origins := make(map[string]delayOrigins)
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, dur, ok := strings.Cut(part, "=")
		name, dur = strings.TrimSpace(name), strings.TrimSpace(dur)
		if !ok || name == "" {
			return fmt.Errorf("%q is not NAME=DURATION; write a list such as \"bravo=35ms,charlie=70ms\"", part)
		}
		if _, dup := m[name]; dup {
			return fmt.Errorf("replica %q is given twice", name)
		}
		t, err := parseDuration(dur)
		if err != nil {
			return fmt.Errorf("the delay to %q: %w", name, err)
		}
		m[name], origins[name] = t, delayOrigins{name: o, delay: o}
	}
	if len(m) == 0 {
		return errors.New("no NAME=DURATION in the list")
	}
	c.EmulatedPeerDelay, s.peerDelay = m, origins
	return nil
}

// checkPeerDelay checks that emulated_peer_delay names replicas and that
// no delay is negative.
func (c *Config) checkPeerDelay(src *sources) hcl.Diagnostics {
	var diags hcl.Diagnostics
	names := make([]string, 0, len(c.EmulatedPeerDelay))
	for name := range c.EmulatedPeerDelay {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		o := src.peerDelay[name]
		known := slices.ContainsFunc(c.Replicas, func(r Replica) bool { return r.Name == name })
		if !known && !src.replicasIncomplete && !o.name.reported {
			diags = append(diags, o.name.errorf("Unknown replica in emulated_peer_delay",
				"%q is not a replica; %s.", name, replicaNames(c.Replicas)))
		}
		if d := c.EmulatedPeerDelay[name]; d < 0 && !o.delay.reported {
			diags = append(diags, o.delay.errorf("Invalid emulated_peer_delay",
				"The delay to %q must not be negative; got %s.", name, d))
		}
	}
	return diags
}

// replicaNames lists the names of rs for an error, as "the replicas are a,
// b and c".
func replicaNames(rs []Replica) string {
	var names []string
	for _, r := range rs {
		if !slices.Contains(names, r.Name) {
			names = append(names, r.Name)
		}
	}
	if len(names) == 0 {
		return "there are none"
	}
	return "the replicas are " + list(names, "and")
}
