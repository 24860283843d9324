package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
)

// WANRecord is one line of bench/wan/run.sh's latency.jsonl or
// hotkey.jsonl: one site's bench run in the emulated five-site deployment.
type WANRecord struct {
	Stamp       string   `json:"stamp"`
	Mode        string   `json:"mode"`
	System      string   `json:"system"`
	Site        string   `json:"site"`
	Clients     int      `json:"clients"`
	Conflict    float64  `json:"conflict"`
	Duration    string   `json:"duration"`
	BestCase    *float64 `json:"best_case_ms"`
	OpsPerSec   *float64 `json:"ops_per_s"`
	P50         *float64 `json:"p50_ms"`
	P99         *float64 `json:"p99_ms"`
	Errors      *float64 `json:"errors"`
	P50OverBest *float64 `json:"p50_over_best"`
	IntP99Med   *float64 `json:"interval_p99_median_ms"`
	IntP99Max   *float64 `json:"interval_p99_max_ms"`
}

// LoadWAN reads a bench/wan results directory; a missing file gives no
// records.
func LoadWAN(dir, name string) ([]WANRecord, error) {
	recs, err := readJSONLines[WANRecord](filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return recs, err
}

func num(p *float64, format string) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf(format, *p)
}

// WANLatencyTable sets, per site, epaxosd's median and p99 beside the
// best case and raft's (leader in CA).
func WANLatencyTable(recs []WANRecord) Table {
	t := Table{Title: "wide-area latency", Header: []string{"site", "best case ms", "epaxosd p50 ms", "epaxosd p99 ms",
		"epaxosd p50 / best", "within 10%", "raft best case ms", "raft p50 ms", "raft p99 ms"}}
	var sites []string
	for _, r := range recs {
		if !slices.Contains(sites, r.Site) {
			sites = append(sites, r.Site)
		}
	}
	find := func(sys, site string) *WANRecord {
		for i := len(recs) - 1; i >= 0; i-- {
			if recs[i].System == sys && recs[i].Site == site {
				return &recs[i]
			}
		}
		return nil
	}
	for _, site := range sites {
		row := []string{site, "—", "—", "—", "—", "—", "—", "—", "—"}
		if e := find("epaxosd", site); e != nil {
			row[1], row[2], row[3] = num(e.BestCase, "%.1f"), num(e.P50, "%.1f"), num(e.P99, "%.1f")
			row[4] = num(e.P50OverBest, "%.3f")
			if e.P50OverBest != nil {
				row[5] = map[bool]string{true: "yes", false: "**no**"}[*e.P50OverBest <= 1.10]
			}
		}
		if r := find("raftkv", site); r != nil {
			row[6], row[7], row[8] = num(r.BestCase, "%.1f"), num(r.P50, "%.1f"), num(r.P99, "%.1f")
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// WANHotKeyTable summarises the hot-key runs per system and site.
func WANHotKeyTable(recs []WANRecord) Table {
	t := Table{Title: "wide-area hot key", Header: []string{"system", "site", "clients", "ops/s", "p50 ms", "p99 ms",
		"p99 ms per second: median / max", "errors"}}
	for _, r := range recs {
		t.Rows = append(t.Rows, []string{r.System, r.Site, fmt.Sprint(r.Clients), num(r.OpsPerSec, "%.0f"),
			num(r.P50, "%.1f"), num(r.P99, "%.1f"), num(r.IntP99Med, "%.1f") + " / " + num(r.IntP99Max, "%.1f"), num(r.Errors, "%.0f")})
	}
	return t
}

// writeWAN writes the wide-area section from a bench/wan results directory.
func writeWAN(w func(string, ...any), dir string) error {
	lat, err := LoadWAN(dir, "latency.jsonl")
	if err != nil {
		return err
	}
	hot, err := LoadWAN(dir, "hotkey.jsonl")
	if err != nil {
		return err
	}
	if len(lat)+len(hot) == 0 {
		return fmt.Errorf("%s: no latency.jsonl or hotkey.jsonl", dir)
	}
	w("## Wide area: five emulated sites\n\n")
	w("`bench/wan/run.sh` (see bench/wan/README.md): one replica per site of ../shared/wan-rtt.csv\n")
	w("(copied to bench/wan/wan-rtt.csv), every peer message delayed by half the sites' round-trip\n")
	w("time, clients local to each site, 0%% conflicts; raft (bolt store) with its leader in CA.\n")
	w("The best case is the round trip to the nearest replica that completes the fast quorum\n")
	w("(3 of 5). Results from `%s`.\n\n", dir)
	if len(lat) > 0 {
		w("%s\n", WANLatencyTable(lat).markdown())
	}
	if len(hot) > 0 {
		w("100%% conflicts on one key from all five sites, near saturation, second by second:\n\n")
		w("%s\n", WANHotKeyTable(hot).markdown())
	}
	return nil
}
