package main

import (
	"cmp"
	"fmt"
	"image/color"
	"maps"
	"math"
	"os"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot file names, in the plots directory.
const (
	SweepPNG  = "latency-throughput.png"
	HotKeyPNG = "hotkey.png"
)

// plotDPI is the resolution of the PNG files.
const plotDPI = 110

// systemStyle gives each system the same colour and marker in every plot.
func systemStyle(system string) (color.Color, draw.GlyphDrawer) {
	i := slices.Index(systemOrder, system)
	if i < 0 {
		i = len(systemOrder) + len(system) // stable for other names
	}
	return plotutil.Color(i), plotutil.Shape(i)
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.X.Min, p.Y.Min = 0, 0 // axes start at zero; Add only widens them
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

// addLine adds one system's line with points; dashed lines for the
// secondary series of a panel.
func addLine(p *plot.Plot, label, system string, xys plotter.XYs, dashed bool) error {
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	c, g := systemStyle(system)
	l.Color, pts.Color, pts.Shape = c, c, g
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	}
	p.Add(l, pts)
	p.Legend.Add(label, l, pts)
	return nil
}

// headroom raises the top of p's Y axis so that the legend, in the top
// left corner, does not cover the lines.
func headroom(p *plot.Plot) {
	p.Y.Max *= 1.3
}

// savePanels draws plots in a grid (rows of columns) into one PNG file.
func savePanels(path string, panels [][]*plot.Plot, w, h vg.Length) error {
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	// A white background: PNG viewers in dark mode otherwise show black axes on black.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	t := draw.Tiles{
		Rows: len(panels), Cols: len(panels[0]),
		PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 6,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2,
	}
	canvases := plot.Align(panels, t, dc)
	for j := range panels {
		for i, p := range panels[j] {
			p.Draw(canvases[j][i])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// PlotSweep draws p50 (left) and p99 (right) against ops/s, one line per
// system (and replica count), its points in order of load. Runs without a
// result are left out.
func PlotSweep(path string, records []*Record) error {
	type line struct {
		system   string
		replicas int
	}
	var lines []line
	byLine := map[line][]*Record{}
	for _, r := range records {
		if !r.OK() || r.P50 == nil || r.P99 == nil {
			continue
		}
		l := line{r.System, r.Replicas}
		if byLine[l] == nil {
			lines = append(lines, l)
		}
		byLine[l] = append(byLine[l], r)
	}
	if len(lines) == 0 {
		return fmt.Errorf("no successful sweep run to plot")
	}
	slices.SortFunc(lines, func(a, b line) int {
		return cmp.Or(compareSystems(a.system, b.system), cmp.Compare(a.replicas, b.replicas))
	})
	p50 := newPlot("p50 latency against throughput", "ops/s", "p50 ms")
	p99 := newPlot("p99 latency against throughput", "ops/s", "p99 ms")
	replicaCounts := map[int]bool{}
	for _, l := range lines {
		replicaCounts[l.replicas] = true
	}
	for _, l := range lines {
		rs := byLine[l]
		slices.SortFunc(rs, func(a, b *Record) int {
			return cmp.Or(cmp.Compare(a.Clients, b.Clients), cmp.Compare(a.Rate, b.Rate))
		})
		var xy50, xy99 plotter.XYs
		for _, r := range rs {
			xy50 = append(xy50, plotter.XY{X: *r.OpsPerSec, Y: *r.P50})
			xy99 = append(xy99, plotter.XY{X: *r.OpsPerSec, Y: *r.P99})
		}
		label := displayName(l.system)
		if len(replicaCounts) > 1 {
			label = fmt.Sprintf("%s (%d)", label, l.replicas)
		}
		if err := addLine(p50, label, l.system, xy50, false); err != nil {
			return err
		}
		if err := addLine(p99, label, l.system, xy99, false); err != nil {
			return err
		}
	}
	headroom(p50)
	headroom(p99)
	return savePanels(path, [][]*plot.Plot{{p50, p99}}, 11*vg.Inch, 4.5*vg.Inch)
}

// PlotHotKey draws, per second of each hot-key run, ops/s (top) and the
// p50 (dashed) and p99 latency (bottom), one colour per system. Intervals
// of the warmup are left out; each point is at the end of its interval,
// in seconds since the measurement began.
func PlotHotKey(path string, res *Results, records []*Record) error {
	const x = "seconds since the measurement began (after the warmup)"
	ops := newPlot("hot key: throughput per second", x, "ops/s")
	lat := newPlot("hot key: latency per second", x, "ms")
	n := 0
	for _, r := range records {
		series, err := res.Series(r, true)
		if err != nil {
			return err
		}
		warmup, err := time.ParseDuration(r.Warmup)
		if err != nil {
			warmup = 0
		}
		var xyOps, xy50, xy99 plotter.XYs
		for _, iv := range series {
			t := max(iv.Elapsed-warmup.Seconds(), 0)
			xyOps = append(xyOps, plotter.XY{X: t, Y: iv.OpsPerSec})
			if iv.P50 != nil && iv.P99 != nil {
				xy50 = append(xy50, plotter.XY{X: t, Y: *iv.P50})
				xy99 = append(xy99, plotter.XY{X: t, Y: *iv.P99})
			}
		}
		if len(xyOps) == 0 {
			continue
		}
		// The replicas' execution delay (their metrics files), on the same
		// time axis: the bench run began at its first interval's time
		// minus its elapsed seconds.
		var xyExec plotter.XYs
		if rm, err := res.ReplicaMetrics(r); err != nil {
			return err
		} else if len(rm) > 0 && len(series) > 0 && !series[0].Time.IsZero() {
			began := series[0].Time.Add(-time.Duration(series[0].Elapsed * float64(time.Second)))
			perSecond := map[int64]float64{}
			for _, ivs := range rm {
				for _, iv := range ivs {
					t := iv.Time.Sub(began).Seconds() - warmup.Seconds()
					if iv.ExecP99 == nil || t <= 0 || t > xyOps[len(xyOps)-1].X+1 {
						continue
					}
					k := int64(math.Round(t))
					perSecond[k] = max(perSecond[k], *iv.ExecP99)
				}
			}
			for _, k := range slices.Sorted(maps.Keys(perSecond)) {
				xyExec = append(xyExec, plotter.XY{X: float64(k), Y: perSecond[k]})
			}
		}
		name := fmt.Sprintf("%s, %d replicas, %d clients, %g%% conflict", displayName(r.System), r.Replicas, r.Clients, r.Conflict)
		if err := addLine(ops, name, r.System, xyOps, false); err != nil {
			return err
		}
		if len(xy99) > 0 {
			if err := addLine(lat, displayName(r.System)+" p99", r.System, xy99, false); err != nil {
				return err
			}
			if err := addLine(lat, displayName(r.System)+" p50", r.System, xy50, true); err != nil {
				return err
			}
		}
		if len(xyExec) > 0 {
			if err := addLine(lat, displayName(r.System)+" commit-to-execution p99 (max over replicas)", "exec:"+r.System, xyExec, true); err != nil {
				return err
			}
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no hot-key run with per-second statistics to plot")
	}
	headroom(ops)
	headroom(lat)
	return savePanels(path, [][]*plot.Plot{{ops}, {lat}}, 10*vg.Inch, 7*vg.Inch)
}
