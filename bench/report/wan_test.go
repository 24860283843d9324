package main

import (
	"reflect"
	"testing"
)

// The WAN section: per site, epaxosd's median against the best case (the
// 10% target checked per row) beside raft's, and the hot-key runs.
func TestWANTables(t *testing.T) {
	lat, err := LoadWAN("testdata/wan", "latency.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	got := WANLatencyTable(lat).Rows
	want := [][]string{
		{"VA", "70.5", "74.2", "122.1", "1.052", "yes", "119.8", "159.7", "348.7"},
		{"EU", "127.3", "150.0", "300.0", "1.178", "**no**", "—", "—", "—"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("latency table:\n got %q\nwant %q", got, want)
	}
	hot, err := LoadWAN("testdata/wan", "hotkey.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if got := WANHotKeyTable(hot).Rows; !reflect.DeepEqual(got, [][]string{{"epaxosd", "VA", "1024", "1800", "400.0", "900.0", "700.0 / 990.0", "0"}}) {
		t.Errorf("hot-key table: %q", got)
	}
	if recs, err := LoadWAN("testdata/wan", "missing.jsonl"); err != nil || recs != nil {
		t.Errorf("missing file: %v, %v", recs, err)
	}
}
