package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// plotSeries draws a time series of a result as a PNG next to the report
// and returns its path relative to the report.
func plotSeries(outDir string, r *Result, name, title, yLabel string) (string, error) {
	series := r.Series[name]
	if len(series) == 0 {
		return "", nil
	}
	pts := make(plotter.XYs, len(series))
	for i, s := range series {
		pts[i].X, pts[i].Y = s[0], s[1]
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since the consumer started"
	if strings.HasSuffix(name, "_over_minutes") {
		p.X.Label.Text = "minutes since the consumer started"
	}
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	line, err := plotter.NewLine(pts)
	if err != nil {
		return "", fmt.Errorf("plot %s: %w", name, err)
	}
	p.Add(line, plotter.NewGrid())
	path := filepath.Join(outDir, r.Scenario+"_"+name+".png")
	if err := p.Save(7*vg.Inch, 3.5*vg.Inch, path); err != nil {
		return "", fmt.Errorf("save %s: %w", path, err)
	}
	return path, nil
}

// plotBars draws one bar per label as a PNG and returns its path.
func plotBars(outDir, file, title, yLabel string, labels []string, values []float64) (string, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	bars, err := plotter.NewBarChart(plotter.Values(values), vg.Points(40))
	if err != nil {
		return "", fmt.Errorf("plot %s: %w", file, err)
	}
	p.Add(bars, plotter.NewGrid())
	p.NominalX(labels...)
	path := filepath.Join(outDir, file)
	if err := p.Save(7*vg.Inch, 3.5*vg.Inch, path); err != nil {
		return "", fmt.Errorf("save %s: %w", path, err)
	}
	return path, nil
}
