package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// namePrefix starts the name of every namespace and root-namespace
// interface the test creates; the test process's pid follows, in hex.
const namePrefix = "epc"

// nftTable is the nftables table that holds a replica's partition rules.
const nftTable = "epaxos_chaos"

// network is one cluster's hosts: a switch namespace holding the bridge,
// joined to the root namespace by a veth, and one namespace per replica
// with a veth to the bridge.
//
//	root ns: hostIf (hostIP/24) ── up0 ┐
//	switch ns (sw):                    br0 ── p<i> ┐
//	replica ns (ns[i]):                             eth0 (ips[i]/24), lo
type network struct {
	id     string   // pid in hex and a letter per network of this process
	sw     string   // the switch namespace
	hostIf string   // the root namespace's end of the switch's uplink
	hostIP string   // its address
	ns     []string // the replicas' namespaces
	ips    []string // the replicas' addresses
}

var networkSeq atomic.Int32

// run runs a command and returns its error with its output.
func run(stdin string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// output runs a command and returns its standard output.
func output(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return string(out), nil
}

// newNetwork creates the hosts of an n-replica cluster. It is torn down at
// the end of the test and when the test process is interrupted.
func newNetwork(t *testing.T, n int) *network {
	t.Helper()
	seq := networkSeq.Add(1) - 1
	id := fmt.Sprintf("%x%c", os.Getpid(), 'a'+seq%26)
	subnet, err := pickSubnet(os.Getpid()*7 + int(seq))
	if err != nil {
		t.Fatal(err)
	}
	nw := &network{id: id, sw: namePrefix + "-" + id + "-sw", hostIf: namePrefix + id, hostIP: subnet + ".1"}
	for i := 0; i < n; i++ {
		nw.ns = append(nw.ns, fmt.Sprintf("%s-%s-r%d", namePrefix, id, i))
		nw.ips = append(nw.ips, fmt.Sprintf("%s.%d", subnet, 11+i))
	}
	// Tear down whatever was created, also on a failure half way.
	t.Cleanup(nw.teardown)
	remove := onInterrupt(nw.teardown)
	t.Cleanup(remove)

	cmds := [][]string{
		{"netns", "add", nw.sw},
		{"-n", nw.sw, "link", "set", "lo", "up"},
		{"-n", nw.sw, "link", "add", "br0", "type", "bridge"},
		{"-n", nw.sw, "link", "set", "br0", "up"},
		{"link", "add", nw.hostIf, "type", "veth", "peer", "name", "up0", "netns", nw.sw},
		{"-n", nw.sw, "link", "set", "up0", "master", "br0"},
		{"-n", nw.sw, "link", "set", "up0", "up"},
		{"addr", "add", nw.hostIP + "/24", "dev", nw.hostIf},
		{"link", "set", nw.hostIf, "up"},
	}
	for i, ns := range nw.ns {
		port := fmt.Sprintf("p%d", i)
		cmds = append(cmds,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", nw.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", nw.sw, "link", "set", port, "master", "br0"},
			[]string{"-n", nw.sw, "link", "set", port, "up"},
			[]string{"-n", ns, "addr", "add", nw.ips[i] + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
		)
	}
	for _, c := range cmds {
		if err := run("", "ip", c...); err != nil {
			t.Fatalf("setting up the network: %v", err)
		}
	}
	return nw
}

// teardown kills every process left in the namespaces and removes the
// namespaces and the root namespace's veth (which takes the bridge and the
// other veths with it). It is idempotent.
func (nw *network) teardown() {
	for _, ns := range append(slices.Clone(nw.ns), nw.sw) {
		removeNamespace(ns)
	}
	if linkExists(nw.hostIf) {
		run("", "ip", "link", "del", nw.hostIf)
	}
}

// removeNamespace SIGKILLs the processes in ns and deletes it.
func removeNamespace(ns string) {
	if !namespaceExists(ns) {
		return
	}
	if out, err := output("ip", "netns", "pids", ns); err == nil {
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil {
				killPid(pid)
			}
		}
	}
	run("", "ip", "netns", "del", ns)
}

func namespaceExists(ns string) bool {
	_, err := os.Stat("/var/run/netns/" + ns)
	return err == nil
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// pickSubnet returns a 10.X.Y /24 prefix that no address or route of the
// root namespace uses, starting from a place derived from hint.
func pickSubnet(hint int) (string, error) {
	addrs, err := output("ip", "-4", "-o", "addr", "show")
	if err != nil {
		return "", err
	}
	routes, err := output("ip", "-4", "route", "show", "table", "all")
	if err != nil {
		return "", err
	}
	used := addrs + "\n" + routes
	for k := 0; k < 200*250; k++ {
		v := (hint + k) % (200 * 250)
		subnet := fmt.Sprintf("10.%d.%d", 40+v/250, 1+v%250)
		if !strings.Contains(used, subnet+".") {
			return subnet, nil
		}
	}
	return "", errors.New("no free 10.x.y.0/24 subnet")
}

// sweepLeftovers removes the namespaces and interfaces that earlier test
// processes, now gone, left behind (a crash or a go test timeout skips
// every cleanup). Names owned by a running process are left alone.
func sweepLeftovers() []string {
	var removed []string
	if out, err := output("ip", "netns", "list"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 || !strings.HasPrefix(fields[0], namePrefix+"-") {
				continue
			}
			name := fields[0]
			id, _, _ := strings.Cut(strings.TrimPrefix(name, namePrefix+"-"), "-")
			if ownerAlive(id) {
				continue
			}
			removeNamespace(name)
			removed = append(removed, "netns "+name)
		}
	}
	if entries, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, e := range entries {
			name := e.Name()
			if !strings.HasPrefix(name, namePrefix) || ownerAlive(strings.TrimPrefix(name, namePrefix)) {
				continue
			}
			if err := run("", "ip", "link", "del", name); err == nil {
				removed = append(removed, "link "+name)
			}
		}
	}
	return removed
}

// ownerAlive reports whether id (a pid in hex followed by one letter, as
// newNetwork makes them) belongs to a running process. Any running process
// counts: another chaos test (whatever its binary is called) must keep its
// network, and a pid reused since merely delays the sweep. Names that do
// not parse are not ours and count as alive.
func ownerAlive(id string) bool {
	if len(id) < 2 {
		return true
	}
	pid, err := strconv.ParseUint(id[:len(id)-1], 16, 32)
	if err != nil || id[len(id)-1] < 'a' || id[len(id)-1] > 'z' {
		return true
	}
	_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// A partition divides the replicas into groups that cannot reach each
// other. A replica in no group reaches everyone: with two groups, it is a
// bridge between them. The zero partition cuts nothing.
type partition struct {
	Kind   string // minority, split or bridge
	Groups [][]int
	Bridge int // the replica in no group, for Kind bridge
}

func (p partition) String() string {
	var gs []string
	for _, g := range p.Groups {
		gs = append(gs, formatNodes(g))
	}
	if p.Kind == "bridge" {
		return fmt.Sprintf("bridge r%d between %s", p.Bridge, strings.Join(gs, " and "))
	}
	return p.Kind + " " + strings.Join(gs, " | ")
}

// drops returns, for each of n replicas, the sorted replicas whose traffic
// it must drop: every replica of another group than its own.
func (p partition) drops(n int) [][]int {
	group := make([]int, n)
	for i := range group {
		group[i] = -1
	}
	for g, members := range p.Groups {
		for _, r := range members {
			group[r] = g
		}
	}
	out := make([][]int, n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if i != j && group[i] >= 0 && group[j] >= 0 && group[i] != group[j] {
				out[i] = append(out[i], j)
			}
		}
	}
	return out
}

// nftScript returns the nft script that makes a namespace drop every
// packet from and to peers (addresses), replacing any earlier rules; with
// no peers it removes the rules.
func nftScript(peers []string) string {
	// "table X" then "delete table X" removes the table whether it existed
	// or not; nft applies the whole script in one transaction.
	s := fmt.Sprintf("table inet %s\ndelete table inet %s\n", nftTable, nftTable)
	if len(peers) == 0 {
		return s
	}
	set := strings.Join(peers, ", ")
	return s + fmt.Sprintf("table inet %s {\n"+
		"\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tip saddr { %s } drop\n\t}\n"+
		"\tchain output {\n\t\ttype filter hook output priority 0; policy accept;\n\t\tip daddr { %s } drop\n\t}\n"+
		"}\n", nftTable, set, set)
}

// partitionScripts returns the nft script of every replica for p.
func partitionScripts(p partition, ips []string) []string {
	var out []string
	for _, peers := range p.drops(len(ips)) {
		var addrs []string
		for _, j := range peers {
			addrs = append(addrs, ips[j])
		}
		out = append(out, nftScript(addrs))
	}
	return out
}

// apply installs p's rules in every replica's namespace (the zero
// partition heals).
func (nw *network) apply(p partition) error {
	var errs []error
	for i, script := range partitionScripts(p, nw.ips) {
		if err := run(script, "ip", "netns", "exec", nw.ns[i], "nft", "-f", "-"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func formatNodes(nodes []int) string {
	var s []string
	for _, r := range nodes {
		s = append(s, fmt.Sprintf("r%d", r))
	}
	return "{" + strings.Join(s, ",") + "}"
}
