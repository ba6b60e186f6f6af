package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// row is one line of the result table. A row that only compares (a second
// ratio for the contender above it) leaves Bench, Contender and Figure empty.
type row struct {
	Bench, Contender string
	Figure           string
	Spread           string
	Ratio            string
	Target           string
	Result           string
	Note             string
}

// table collects rows and remembers whether any target was missed.
type table struct {
	rows   []row
	missed []string
	failed []string
}

func (t *table) add(r row) { t.rows = append(t.rows, r) }

// check records the outcome of a target on the row and returns the result
// word the table shows.
func (t *table) check(what string, ok bool) string {
	if ok {
		return "pass"
	}
	t.missed = append(t.missed, what)
	return "MISS"
}

// fail records a benchmark that could not run, as a row saying why.
func (t *table) fail(bench string, err error) {
	t.failed = append(t.failed, bench)
	t.add(row{Bench: bench, Contender: "(failed)", Note: err.Error()})
}

// print writes the table, aligned, to w.
func (t *table) print(w io.Writer) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tcontender\tfigure (median)\tspread\tratio\ttarget\tresult\tnote")
	fmt.Fprintln(tw, "---------\t---------\t---------------\t------\t-----\t------\t------\t----")
	for _, r := range t.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Bench, r.Contender, r.Figure, r.Spread, r.Ratio, r.Target, r.Result, r.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// median returns the median of xs (the mean of the middle two for an even
// count), or NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spread returns (max - min) / median of xs as a percentage string: how
// much the rounds disagreed.
func spread(xs []float64) string {
	if len(xs) < 2 {
		return ""
	}
	m := median(xs)
	if m == 0 {
		return ""
	}
	return fmt.Sprintf("±%.0f%%", 50*(slices.Max(xs)-slices.Min(xs))/m)
}

// pairedRatio returns the median over rounds of a[i]/b[i]: each ratio
// compares two figures measured in the same round, under the same load.
func pairedRatio(a, b []float64) float64 {
	n := min(len(a), len(b))
	rs := make([]float64, 0, n)
	for i := range n {
		if b[i] > 0 {
			rs = append(rs, a[i]/b[i])
		}
	}
	return median(rs)
}

// rate formats a per-second figure with a unit: 1.23M msgs/s.
func rate(v float64, unit string) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM %s", v/1e6, unit)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk %s", v/1e3, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

// ratioText formats a ratio against a named baseline: 5.3x gochannel.
func ratioText(r float64, vs string) string {
	if math.IsNaN(r) {
		return "n/a"
	}
	if r < 10 {
		return fmt.Sprintf("%.2fx %s", r, vs)
	}
	return fmt.Sprintf("%.1fx %s", r, vs)
}

// joinNotes joins the non-empty notes with "; ".
func joinNotes(notes ...string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}
