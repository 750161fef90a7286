package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// WriteSVG plots the round-trip latency and the one-way throughput of each
// transport by message size, as two bar charts with logarithmic axes.
func (r *Report) WriteSVG(w io.Writer) error {
	const (
		panelW, panelH = 440, 300
		width, height  = 2*panelW + 40, panelH + 80
	)
	colors := map[string]string{Pipe: "#4e79a7", Socket: "#f28e2b", Floor: "#76b7b2", Msg: "#e15759"}
	b := &strings.Builder{}
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := fmt.Sprintf("ipcfs bench, %s, %d CPUs, %s", r.Machine.Kernel, r.Machine.CPUs, r.Date.Format("2006-01-02"))

	var lat, tput []bar
	var p Placement // the first placement's
	if len(r.Placements) > 0 {
		p = r.Placements[0]
		title += ", " + r.placementLabel(p.Name)
	}
	fmt.Fprintf(b, `<text x="%d" y="22" text-anchor="middle" font-size="15">%s</text>`+"\n", width/2, html.EscapeString(title))
	for _, l := range p.RoundTrip {
		lat = append(lat, bar{l.Transport, l.Size, l.MedianNs / 1e3, l.P99Ns / 1e3})
	}
	for _, t := range p.Throughput {
		tput = append(tput, bar{t.Transport, t.Size, t.MBPerSec, 0})
	}
	plotBars(b, 20, 40, panelW, panelH, "round trip, median (whisker: p99), µs — lower is better", lat, colors)
	plotBars(b, 20+panelW+20, 40, panelW, panelH, "one-way throughput, MB/s — higher is better", tput, colors)

	// Legend.
	x := width/2 - 290
	for _, t := range transports {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="14" height="14" fill="%s"/>`, x, height-30, colors[t])
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", x+20, height-18, legendName(t))
		x += 150
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func legendName(t string) string {
	switch t {
	case Socket:
		return "unix seqpacket"
	case Floor:
		return "FUSE floor"
	case Msg:
		return "ipcfs msg"
	}
	return t
}

// bar is one transport's value at one size; whisker 0 is none.
type bar struct {
	transport      string
	size           int
	value, whisker float64
}

// plotBars draws grouped bars (one group per size, one bar per transport)
// with a log10 value axis in the box at (x, y) of size w×h.
func plotBars(b *strings.Builder, x, y, w, h int, title string, bars []bar, colors map[string]string) {
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x+w/2, y+10, html.EscapeString(title))
	if len(bars) == 0 {
		return
	}
	left, top, bottom := x+50, y+24, y+h-24
	right := x + w
	lo, hi := math.Inf(1), math.Inf(-1)
	var sizes []int
	for _, br := range bars {
		if br.value > 0 {
			lo, hi = math.Min(lo, br.value), math.Max(hi, math.Max(br.value, br.whisker))
		}
		if len(sizes) == 0 || sizes[len(sizes)-1] != br.size {
			sizes = append(sizes, br.size)
		}
	}
	if math.IsInf(lo, 0) {
		return
	}
	lo, hi = math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if hi <= lo {
		hi = lo + 1
	}
	yOf := func(v float64) float64 {
		return float64(bottom) - (math.Log10(v)-lo)/(hi-lo)*float64(bottom-top)
	}
	// Decade grid lines and labels.
	for d := lo; d <= hi; d++ {
		yy := yOf(math.Pow(10, d))
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, left, yy, right, yy)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-4, yy+4, decade(d))
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, bottom, right, bottom)

	groupW := float64(right-left) / float64(len(sizes))
	barW := groupW * 0.8 / float64(len(transports))
	for gi, size := range sizes {
		gx := float64(left) + float64(gi)*groupW
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+groupW/2, bottom+16, fmtSize(int64(size)))
		for ti, t := range transports {
			for _, br := range bars {
				if br.size != size || br.transport != t || br.value <= 0 {
					continue
				}
				bx := gx + groupW*0.1 + float64(ti)*barW
				by := yOf(br.value)
				fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.4g</title></rect>`+"\n",
					bx, by, barW-2, float64(bottom)-by, colors[t], t, fmtSize(int64(size)), br.value)
				if br.whisker > br.value {
					wy := yOf(br.whisker)
					cx := bx + (barW-2)/2
					fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`, cx, by, cx, wy)
					fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", cx-barW/4, wy, cx+barW/4, wy)
				}
			}
		}
	}
}

// decade labels 10^d compactly.
func decade(d float64) string {
	v := math.Pow(10, d)
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}
