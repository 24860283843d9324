package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The systems, in the order of the tables' columns; others follow by name.
var systemOrder = []string{"epaxosd", "raftkv-bolt", "raftkv-mem", "echo"}

// baselines are the systems epaxosd's throughput is divided by.
var baselines = []string{"raftkv-bolt", "raftkv-mem", "echo"}

// displayName is a system's name in tables and legends.
func displayName(system string) string {
	switch system {
	case "raftkv-bolt":
		return "raft-bolt"
	case "raftkv-mem":
		return "raft-mem"
	}
	return system
}

// sortSystems orders systems as systemOrder, then by name.
func sortSystems(systems []string) {
	rank := func(s string) int {
		if i := slices.Index(systemOrder, s); i >= 0 {
			return i
		}
		return len(systemOrder)
	}
	slices.SortFunc(systems, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
	})
}

// Table is one table of the report.
type Table struct {
	Title                        string
	Replicas, ValueSize, Clients int
	Header                       []string
	Rows                         [][]string
	Notes                        []string // runs that failed, had errors or followed a restart
}

// MatrixTables makes one table per (replicas, value size, clients) of the
// matrix records: a row per conflict, each system's ops/s and p99, and
// epaxosd's ops/s divided by each baseline's. Echo runs once for all
// replica counts, so its column is the same in the tables of every
// replica count.
func MatrixTables(records []*Record) []Table {
	type group struct{ replicas, valueSize, clients int }
	type cell struct {
		system   string
		conflict float64
	}
	var groups []group
	byGroup := map[group]map[cell]*Record{}
	echo := map[[3]float64]*Record{} // by (conflict, value size, clients)
	add := func(g group, r *Record) {
		if byGroup[g] == nil {
			byGroup[g] = map[cell]*Record{}
			groups = append(groups, g)
		}
		byGroup[g][cell{r.System, r.Conflict}] = r
	}
	for _, r := range records {
		if r.Rate > 0 {
			continue // the matrix is closed loop
		}
		if r.System == "echo" {
			echo[[3]float64{r.Conflict, float64(r.ValueSize), float64(r.Clients)}] = r
			continue
		}
		add(group{r.Replicas, r.ValueSize, r.Clients}, r)
	}
	if len(groups) == 0 { // echo alone
		for _, r := range records {
			if r.System == "echo" && r.Rate == 0 {
				add(group{r.Replicas, r.ValueSize, r.Clients}, r)
			}
		}
	}
	slices.SortFunc(groups, func(a, b group) int {
		return cmp.Or(cmp.Compare(a.replicas, b.replicas), cmp.Compare(a.valueSize, b.valueSize), cmp.Compare(a.clients, b.clients))
	})

	var tables []Table
	for _, g := range groups {
		cells := byGroup[g]
		var conflicts []float64
		var systems []string
		for c := range cells {
			if !slices.Contains(conflicts, c.conflict) {
				conflicts = append(conflicts, c.conflict)
			}
			if !slices.Contains(systems, c.system) {
				systems = append(systems, c.system)
			}
		}
		find := func(system string, conflict float64) *Record {
			if r := cells[cell{system, conflict}]; r != nil {
				return r
			}
			if system == "echo" {
				return echo[[3]float64{conflict, float64(g.valueSize), float64(g.clients)}]
			}
			return nil
		}
		if !slices.Contains(systems, "echo") {
			for _, c := range conflicts {
				if find("echo", c) != nil {
					systems = append(systems, "echo")
					break
				}
			}
		}
		slices.Sort(conflicts)
		sortSystems(systems)

		t := Table{Replicas: g.replicas, ValueSize: g.valueSize, Clients: g.clients}
		if g.replicas == 1 {
			t.Title = fmt.Sprintf("unreplicated, %d B values, %d clients", g.valueSize, g.clients)
		} else {
			t.Title = fmt.Sprintf("%d replicas, %d B values, %d clients", g.replicas, g.valueSize, g.clients)
		}
		t.Header = []string{"conflict %"}
		for _, s := range systems {
			t.Header = append(t.Header, displayName(s)+" ops/s", displayName(s)+" p99 ms")
		}
		var ratios []string
		if slices.Contains(systems, "epaxosd") {
			for _, b := range baselines {
				if slices.Contains(systems, b) {
					ratios = append(ratios, b)
					t.Header = append(t.Header, "epaxosd / "+displayName(b))
				}
			}
		}
		for _, c := range conflicts {
			row := []string{formatNum(c)}
			for _, s := range systems {
				r := find(s, c)
				row = append(row, formatOps(r), formatMs(r, func(r *Record) *float64 { return r.P99 }))
				t.Notes = append(t.Notes, notes(r)...)
			}
			for _, b := range ratios {
				row = append(row, formatRatio(find("epaxosd", c), find(b, c)))
			}
			t.Rows = append(t.Rows, row)
		}
		tables = append(tables, t)
	}
	return tables
}

// SweepTable lists the latency-against-throughput points, by system and load.
func SweepTable(records []*Record) Table {
	t := Table{Title: "latency against throughput", Header: []string{"system", "replicas", "clients", "rate /s", "ops/s", "p50 ms", "p99 ms", "errors"}}
	rs := slices.Clone(records)
	slices.SortStableFunc(rs, func(a, b *Record) int {
		return cmp.Or(compareSystems(a.System, b.System), cmp.Compare(a.Replicas, b.Replicas), cmp.Compare(a.Clients, b.Clients), cmp.Compare(a.Rate, b.Rate))
	})
	for _, r := range rs {
		load, rate := strconv.Itoa(r.Clients), "—"
		if r.Rate > 0 {
			load, rate = "—", formatNum(r.Rate)
		}
		t.Rows = append(t.Rows, []string{displayName(r.System), strconv.Itoa(r.Replicas), load, rate, formatOps(r),
			formatMs(r, func(r *Record) *float64 { return r.P50 }), formatMs(r, func(r *Record) *float64 { return r.P99 }), formatErrors(r)})
		t.Notes = append(t.Notes, notes(r)...)
	}
	return t
}

// RunsTable lists runs with everything that tells them apart, in the
// order they ran.
func RunsTable(records []*Record) Table {
	t := Table{Title: "runs", Header: []string{"system", "replicas", "conflict %", "value B", "clients", "rate /s", "ops/s", "p50 ms", "p99 ms", "errors"}}
	for _, r := range records {
		load, rate := strconv.Itoa(r.Clients), "—"
		if r.Rate > 0 {
			load, rate = "—", formatNum(r.Rate)
		}
		t.Rows = append(t.Rows, []string{displayName(r.System), strconv.Itoa(r.Replicas), formatNum(r.Conflict), strconv.Itoa(r.ValueSize), load, rate, formatOps(r),
			formatMs(r, func(r *Record) *float64 { return r.P50 }), formatMs(r, func(r *Record) *float64 { return r.P99 }), formatErrors(r)})
		t.Notes = append(t.Notes, notes(r)...)
	}
	return t
}

func compareSystems(a, b string) int {
	s := []string{a, b}
	sortSystems(s)
	switch {
	case a == b:
		return 0
	case s[0] == a:
		return -1
	}
	return 1
}

// HotKeyTable summarises the hot-key runs second by second: whether
// throughput and tail latency stay steady.
func HotKeyTable(res *Results, records []*Record) (Table, error) {
	t := Table{Title: "hot key", Header: []string{"system", "replicas", "clients", "conflict %", "seconds",
		"ops/s", "ops/s per second: min / median / max", "p99 ms", "p99 ms per second: median / max",
		"execution delay p99 ms per second: median / max", "fast / slow commits", "errors"}}
	for _, r := range records {
		series, err := res.Series(r, true)
		if err != nil {
			return t, err
		}
		var ops, p99 []float64
		for _, iv := range series {
			ops = append(ops, iv.OpsPerSec)
			if iv.P99 != nil {
				p99 = append(p99, *iv.P99)
			}
		}
		row := []string{displayName(r.System), strconv.Itoa(r.Replicas), strconv.Itoa(r.Clients), formatNum(r.Conflict),
			strconv.Itoa(len(series)), formatOps(r), "—", formatMs(r, func(r *Record) *float64 { return r.P99 }), "—",
			"—", "—", formatErrors(r)}
		rm, err := res.ReplicaMetrics(r)
		if err != nil {
			return t, err
		}
		if exec, fast, slow := execDelays(rm); len(rm) > 0 {
			if len(exec) > 0 {
				row[9] = fmt.Sprintf("%.2f / %.2f", median(exec), slices.Max(exec))
			}
			row[10] = fmt.Sprintf("%s / %s", thousands(float64(fast)), thousands(float64(slow)))
		}
		if len(ops) > 0 {
			row[6] = fmt.Sprintf("%s / %s / %s", thousands(slices.Min(ops)), thousands(median(ops)), thousands(slices.Max(ops)))
		}
		if len(p99) > 0 {
			row[8] = fmt.Sprintf("%.2f / %.2f", median(p99), slices.Max(p99))
		}
		t.Rows = append(t.Rows, row)
		t.Notes = append(t.Notes, notes(r)...)
	}
	return t, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// notes says what a reader of a cell must know: the run failed, had
// errors, or came right after its system was restarted.
func notes(r *Record) []string {
	if r == nil {
		return nil
	}
	var out []string
	switch {
	case r.Exit != 0:
		out = append(out, fmt.Sprintf("%s: failed (exit %d; see %s)", r.Label(), r.Exit, r.Log))
	case r.OpsPerSec == nil || *r.OpsPerSec <= 0:
		out = append(out, fmt.Sprintf("%s: no operation succeeded (see %s)", r.Label(), r.Log))
	}
	if r.Errors != nil && *r.Errors > 0 {
		out = append(out, fmt.Sprintf("%s: %d operations failed (see %s)", r.Label(), *r.Errors, r.Log))
	}
	if r.Restarted {
		out = append(out, fmt.Sprintf("%s: ran on a freshly restarted system (a process had exited)", r.Label()))
	}
	return out
}

// formatOps is a run's throughput, "—" when there is no run, "failed"
// when it printed none, marked † when the run did not succeed.
func formatOps(r *Record) string {
	switch {
	case r == nil:
		return "—"
	case r.OpsPerSec == nil:
		return "failed"
	case !r.OK():
		return thousands(*r.OpsPerSec) + " †"
	}
	return thousands(*r.OpsPerSec)
}

func formatMs(r *Record, field func(*Record) *float64) string {
	if r == nil || field(r) == nil || !r.OK() {
		return "—"
	}
	return fmt.Sprintf("%.2f", *field(r))
}

func formatErrors(r *Record) string {
	if r == nil || r.Errors == nil {
		return "—"
	}
	return strconv.FormatInt(*r.Errors, 10)
}

// formatRatio is a's throughput over b's, when both runs succeeded.
func formatRatio(a, b *Record) string {
	if a == nil || b == nil || !a.OK() || !b.OK() {
		return "—"
	}
	return fmt.Sprintf("%.2f", *a.OpsPerSec / *b.OpsPerSec)
}

// formatNum prints a number without a needless fraction.
func formatNum(x float64) string {
	return strconv.FormatFloat(x, 'f', -1, 64)
}

// thousands rounds x to an integer and groups its digits: 16432.4 → "16,432".
func thousands(x float64) string {
	s := strconv.FormatInt(int64(math.Round(x)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// markdown renders t as a Markdown table followed by its notes.
func (t Table) markdown() string {
	var b strings.Builder
	row := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + strings.ReplaceAll(c, "|", `\|`) + " |")
		}
		b.WriteString("\n")
	}
	row(t.Header)
	sep := make([]string, len(t.Header))
	for i := range sep {
		sep[i] = "---:"
	}
	sep[0] = "---"
	row(sep)
	for _, r := range t.Rows {
		row(r)
	}
	if len(t.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range t.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}
