package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const fixture = "testdata/results"

func loadFixture(t *testing.T) *Results {
	t.Helper()
	res, err := Load(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestMatrixTables(t *testing.T) {
	res := loadFixture(t)
	tables := MatrixTables(res.Select("matrix"))
	if len(tables) != 2 {
		t.Fatalf("%d tables, want 2 (3 and 5 replicas)", len(tables))
	}
	wantHeader := []string{"conflict %",
		"epaxosd ops/s", "epaxosd p99 ms", "raft-bolt ops/s", "raft-bolt p99 ms",
		"raft-mem ops/s", "raft-mem p99 ms", "echo ops/s", "echo p99 ms",
		"epaxosd / raft-bolt", "epaxosd / raft-mem", "epaxosd / echo"}
	t3 := tables[0]
	if t3.Title != "3 replicas, 16 B values, 32 clients" {
		t.Errorf("title %q", t3.Title)
	}
	if !reflect.DeepEqual(t3.Header, wantHeader) {
		t.Errorf("header\n got %q\nwant %q", t3.Header, wantHeader)
	}
	want3 := [][]string{
		// The second run of epaxosd at 0% replaces the first; 10000/4000,
		// 10000/8000, 10000/50000.
		{"0", "10,000", "5.00", "4,000", "20.00", "8,000", "10.00", "50,000", "1.00", "2.50", "1.25", "0.20"},
		// raft-bolt was not run at 100%: no cell, no ratio.
		{"100", "6,000", "12.50", "—", "—", "7,500", "11.00", "40,000", "1.50", "—", "0.80", "0.15"},
	}
	if !reflect.DeepEqual(t3.Rows, want3) {
		t.Errorf("3 replicas:\n got %q\nwant %q", t3.Rows, want3)
	}
	if len(t3.Notes) != 0 {
		t.Errorf("3 replicas: notes %q", t3.Notes)
	}

	t5 := tables[1]
	if t5.Title != "5 replicas, 16 B values, 32 clients" || !reflect.DeepEqual(t5.Header, wantHeader) {
		t.Errorf("5 replicas: %q %q", t5.Title, t5.Header)
	}
	// raft-bolt failed: marked, no p99, no ratio. Echo, run once, is in
	// the table of every replica count.
	want5 := [][]string{{"0", "9,000", "7.00", "0 †", "—", "6,000", "9.00", "50,000", "1.00", "—", "1.50", "0.18"}}
	if !reflect.DeepEqual(t5.Rows, want5) {
		t.Errorf("5 replicas:\n got %q\nwant %q", t5.Rows, want5)
	}
	notes := strings.Join(t5.Notes, "\n")
	if !strings.Contains(notes, "raftkv-bolt, 5 replicas, 0% conflict, 16 B, 32 clients: failed (exit 1") ||
		!strings.Contains(notes, "raftkv-mem, 5 replicas, 0% conflict, 16 B, 32 clients: 3 operations failed") {
		t.Errorf("5 replicas: notes\n%s", notes)
	}
}

func TestSweepAndHotKeyTables(t *testing.T) {
	res := loadFixture(t)
	sw := SweepTable(res.Select("sweep"))
	want := [][]string{
		{"epaxosd", "3", "1", "—", "400", "2.20", "5.50", "0"},
		{"epaxosd", "3", "32", "—", "5,000", "6.10", "13.40", "0"},
		{"raft-mem", "3", "1", "—", "3,600", "0.24", "1.10", "0"},
		{"raft-mem", "3", "32", "—", "10,400", "2.50", "12.50", "0"},
	}
	if !reflect.DeepEqual(sw.Rows, want) {
		t.Errorf("sweep:\n got %q\nwant %q", sw.Rows, want)
	}
	hk, err := HotKeyTable(res, res.Select("hotkey"))
	if err != nil {
		t.Fatal(err)
	}
	// Three measured seconds (the two of the warmup are left out). The
	// execution delay is, per second, the largest p99 over the replicas'
	// metrics files (3.5 and 4.0: median 3.75, max 4); the commits are
	// summed over them.
	wantHK := [][]string{{"epaxosd", "3", "128", "100", "3", "10,000", "9,000 / 10,000 / 11,000", "24.00", "24.00 / 30.00",
		"3.75 / 4.00", "34 / 18", "0"}}
	if !reflect.DeepEqual(hk.Rows, wantHK) {
		t.Errorf("hot key:\n got %q\nwant %q", hk.Rows, wantHK)
	}
}

func TestGenerateWritesTablesAndPlots(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "BENCHMARKS.md")
	plots := filepath.Join(dir, "docs", "bench")
	err := Generate(Options{Results: fixture, Out: out, Plots: plots, Command: "report -results x",
		Now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{
		"| cores | 2 |", "| CPU | Test CPU @ 1 GHz |", "| kernel | 6.0.0-test |", "| Go | go version go1.26.8 linux/amd64 |",
		"| started | 2026-11-26T00:00:00Z |",
		"DURATION=10s bash bench/matrix.sh", "cd bench/report && go run . -results",
		"### 3 replicas, 16 B values, 32 clients",
		"| 0 | 10,000 | 5.00 | 4,000 | 20.00 | 8,000 | 10.00 | 50,000 | 1.00 | 2.50 | 1.25 | 0.20 |",
		"### 5 replicas, 16 B values, 32 clients",
		"](docs/bench/latency-throughput.png)", "](docs/bench/hotkey.png)",
		"## Failures", "-duration 10s -clients 128 -conflict 100",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("BENCHMARKS.md lacks %q", want)
		}
	}
	for _, name := range []string{SweepPNG, HotKeyPNG} {
		f, err := os.Open(filepath.Join(plots, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 300 {
			t.Errorf("%s is %v", name, b)
		}
	}
}

func TestRequireOK(t *testing.T) {
	dir := t.TempDir()
	err := Generate(Options{Results: fixture, Out: filepath.Join(dir, "B.md"), Plots: dir, RequireOK: true})
	if err == nil || !strings.Contains(err.Error(), "2 of 16 runs failed") ||
		!strings.Contains(err.Error(), "raftkv-bolt, 5 replicas") || !strings.Contains(err.Error(), "raftkv-mem, 5 replicas, 0% conflict, 16 B, 32 clients: exit 0, ops/s 6,000, errors 3") {
		t.Fatalf("a failed run and one with errors: %v", err)
	}
	// Without the failed run and the one with errors it passes.
	results := filepath.Join(dir, "results")
	if err := os.MkdirAll(filepath.Join(results, "series"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(fixture, "results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var kept []byte
	for line := range bytes.Lines(b) {
		if !bytes.Contains(line, []byte(`"exit":1`)) && !bytes.Contains(line, []byte(`"errors":3`)) {
			kept = append(kept, line...)
		}
	}
	if err := os.WriteFile(filepath.Join(results, "results.jsonl"), kept, 0o644); err != nil {
		t.Fatal(err)
	}
	series, err := os.ReadFile(filepath.Join(fixture, "series", "hotkey-epaxosd-r3-c100-v16-n128.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(results, "series", "hotkey-epaxosd-r3-c100-v16-n128.jsonl"), series, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Generate(Options{Results: results, Out: filepath.Join(dir, "B.md"), Plots: dir, RequireOK: true}); err != nil {
		t.Fatalf("all runs succeeded: %v", err)
	}
	// A failure matrix.sh recorded in run.json fails it too.
	runJSON := filepath.Join(results, "run.json")
	if err := os.WriteFile(runJSON, []byte(`{"failures":["sweep: bench/run.sh exited 1"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Generate(Options{Results: results, Out: filepath.Join(dir, "B.md"), Plots: dir, RequireOK: true})
	if err == nil || !strings.Contains(err.Error(), "run.json records 1 failures") || !strings.Contains(err.Error(), "sweep: bench/run.sh exited 1") {
		t.Fatalf("a failure in run.json: %v", err)
	}
	if err := os.Remove(runJSON); err != nil {
		t.Fatal(err)
	}
	if err := Generate(Options{Results: results, Out: filepath.Join(dir, "B.md"), Plots: dir}); err != nil {
		t.Fatal(err)
	}
	// Without run.json the machine is this one.
	b, err = os.ReadFile(filepath.Join(dir, "B.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "has no run.json") {
		t.Errorf("no run.json: the report does not say whose machine it describes")
	}
}

func TestCommandLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-out", "x.md"}, &stdout, &stderr); code != 2 {
		t.Errorf("without -results: exit %d, want 2", code)
	}
	dir := t.TempDir()
	stderr.Reset()
	if code := run([]string{"-results", fixture, "-out", filepath.Join(dir, "B.md")}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	// The plots go to docs/bench beside -out by default.
	if _, err := os.Stat(filepath.Join(dir, "docs", "bench", SweepPNG)); err != nil {
		t.Error(err)
	}
	stderr.Reset()
	if code := run([]string{"-results", fixture, "-out", filepath.Join(dir, "B.md"), "-require-ok"}, &stdout, &stderr); code != 1 {
		t.Errorf("-require-ok with a failed run: exit %d, want 1", code)
	}
}

func TestThousands(t *testing.T) {
	for x, want := range map[float64]string{0: "0", 999.4: "999", 999.5: "1,000", 16432.1: "16,432", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := thousands(x); got != want {
			t.Errorf("thousands(%v) = %q, want %q", x, got, want)
		}
	}
}
