package config

import (
	"github.com/hashicorp/hcl/v2"
)

// checkReplicas checks that c.Replicas is a cluster: an odd number of
// replicas from MinReplicas to MaxReplicas, with valid, unique names and
// addresses, and PIDs that are exactly 0..N-1.
func (c *Config) checkReplicas(src *sources) hcl.Diagnostics {
	n := len(c.Replicas)
	var diags hcl.Diagnostics

	whole := src.file // problems of the cluster as a whole point at the first replica
	if n > 0 && src.replica(0).block != nil {
		whole = src.replica(0).block
	}
	switch {
	case src.replicasIncomplete:
		// The count is unknown; the malformed blocks are reported.
	case n < MinReplicas:
		diags = append(diags, errorf(whole, "Too few replicas",
			"A cluster needs at least %d replicas so that it survives a failure; found %d.", MinReplicas, n))
	case n > MaxReplicas:
		diags = append(diags, errorf(whole, "Too many replicas",
			"A cluster has at most %d replicas; found %d.", MaxReplicas, n))
	case n%2 == 0:
		diags = append(diags, errorf(whole, "Even number of replicas",
			"A cluster needs an odd number of replicas, since %s survive no more failures than %d; found %d.",
			plural(n), n-1, n))
	}

	byName := make(map[string]int, n)
	byPID := make(map[uint32]int, n)
	byAddress := make(map[string]int, n)
	pidsOK := true
	for i, r := range c.Replicas {
		ro := src.replica(i)

		if !ro.name.reported {
			if !validName(r.Name) {
				diags = append(diags, ro.name.errorf("Invalid replica name",
					"%q is not a valid replica name; use letters, digits, '.', '_' and '-', starting with a letter or digit.", r.Name))
			} else if j, dup := byName[r.Name]; dup {
				diags = append(diags, ro.name.errorf("Duplicate replica name",
					"A replica named %q is already defined%s.", r.Name, at(src.replica(j).block)))
			} else {
				byName[r.Name] = i
			}
		}

		switch j, dup := byPID[r.PID]; {
		case ro.pid.reported:
			pidsOK = false
		case int64(r.PID) >= int64(n) && src.replicasIncomplete:
			pidsOK = false // out of range, or the number of replicas is wrong
		case int64(r.PID) >= int64(n):
			pidsOK = false
			diags = append(diags, ro.pid.errorf("Invalid replica pid",
				"pid %d is out of range; a cluster of %s has pids 0 to %d.", r.PID, plural(n), n-1))
		case dup:
			pidsOK = false
			diags = append(diags, ro.pid.errorf("Duplicate replica pid",
				"Replica %q has pid %d, which replica %q%s already has.",
				r.Name, r.PID, c.Replicas[j].Name, at(src.replica(j).pid.subject)))
		default:
			byPID[r.PID] = i
		}

		if !ro.address.reported {
			if err := checkAddress(r.Address); err != nil {
				diags = append(diags, ro.address.errorf("Invalid replica address",
					"%q is not host:port: %s.", r.Address, err))
			} else if j, dup := byAddress[addressKey(r.Address)]; dup {
				diags = append(diags, ro.address.errorf("Duplicate replica address",
					"Replica %q has address %q, which replica %q%s already has.",
					r.Name, r.Address, c.Replicas[j].Name, at(src.replica(j).address.subject)))
			} else {
				byAddress[addressKey(r.Address)] = i
			}
		}
	}

	// With N distinct PIDs below N, the PIDs are exactly 0..N-1; a Config
	// built in code must also list them in order. (Parse sorts them.)
	if pidsOK {
		for i, r := range c.Replicas {
			if r.PID != uint32(i) {
				diags = append(diags, errorf(nil, "Replicas not sorted by PID",
					"Replicas[%d] has PID %d; Replicas[i].PID must be i.", i, r.PID))
				break
			}
		}
	}
	return diags
}
