package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the report as the table `ipcfs bench` prints.
func (r *Report) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	m := r.Machine
	fmt.Fprintf(b, "ipcfs bench: msg and shm against a pipe, a Unix socket, the FUSE floor and /dev/shm")
	if r.NATS != nil {
		fmt.Fprintf(b, "; msg on NATS JetStream against nats.go")
	}
	fmt.Fprintln(b)
	if r.Command != "" {
		fmt.Fprintf(b, "command: %s\n", r.Command)
	}
	fmt.Fprintf(b, "%s, %d CPUs", m.Kernel, m.CPUs)
	if m.CPUModel != "" {
		fmt.Fprintf(b, " (%s)", m.CPUModel)
	}
	fmt.Fprintf(b, ", %s", m.Go)
	if r.Version != "" {
		fmt.Fprintf(b, ", ipcfs %s", r.Version)
	}
	fmt.Fprintf(b, "\n%s, load %s -> %s, took %.0fs\n",
		r.Date.Format(time.RFC3339), fmtLoad(m.LoadBefore), fmtLoad(m.LoadAfter), r.ElapsedSec)

	for _, p := range r.Placements {
		where := r.placementLabel(p.Name)
		if len(p.RoundTrip) > 0 {
			fmt.Fprintf(b, "\nRound trip, %s (ping-pong between two processes; lower is better)\n", where)
			tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "size\ttransport\tmedian\tp99\tx pipe\tx floor\tp99 x pipe\tp99 x floor\tround trips\t")
			for i, l := range p.RoundTrip {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", sizeOnce(p.RoundTrip, i), l.Transport,
					fmtNs(l.MedianNs), fmtNs(l.P99Ns), fmtRatio(l.RatioToPipe), fmtRatio(l.RatioToFloor),
					fmtRatio(l.P99RatioToPipe), fmtRatio(l.P99RatioToFloor), l.Samples)
			}
			tw.Flush()
		}
		if t := p.Trivial; t != nil {
			fmt.Fprintf(b, "Trivial request, %s (a 1-byte pread of status, answered at once): floor %s (p99 %s), msg's %s (p99 %s), %s x floor\n",
				where, fmtNs(t.Floor.MedianNs), fmtNs(t.Floor.P99Ns), fmtNs(t.Msg.MedianNs), fmtNs(t.Msg.P99Ns), fmtRatio(t.RatioToFloor))
		}
		if len(p.Throughput) > 0 {
			fmt.Fprintf(b, "\nOne-way throughput, %s (one writer process, one reader process; higher is better)\n", where)
			tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "size\ttransport\tmsgs/s\tMB/s\tx pipe\tx floor\tmessages\t")
			for i, t := range p.Throughput {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", sizeOnce(p.Throughput, i), t.Transport,
					fmtCount(t.MsgsPerSec), fmtMB(t.MBPerSec), fmtRatio(t.RatioToPipe), fmtRatio(t.RatioToFloor), t.Messages)
			}
			tw.Flush()
		}
	}
	r.writeNATS(b)
	if s := r.Shm; s != nil {
		fmt.Fprintf(b, "\nshm against /dev/shm (%s region; x /dev/shm: time or bandwidth divided by /dev/shm's)\n", fmtSize(s.RegionBytes))
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\tshm\t/dev/shm\tx /dev/shm\t")
		row := func(name string, c Compare, f func(float64) string) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", name, f(c.Shm), f(c.DevShm), fmtRatio(c.Ratio))
		}
		row("setup + first touch", s.Setup, fmtNs)
		row("  mkdir", s.Mkdir, fmtNs)
		row("  open + ftruncate + mmap", s.Map, fmtNs)
		row("  store to every page", s.Touch, fmtNs)
		row("teardown (munmap, close, rmdir)", s.Teardown, fmtNs)
		row("copy into the mapping (steady)", s.CopyIn, fmtGBps)
		row("copy out of the mapping (steady)", s.CopyOut, fmtGBps)
		tw.Flush()
		switch s.Path {
		case "passthrough":
			fmt.Fprintln(b, "shm was served by FUSE passthrough: the kernel maps the region's memory file itself (no page cache of the mount, nothing written back).")
		case "page cache":
			fmt.Fprintln(b, "shm was served through the mount's page cache (no FUSE passthrough here: it needs Linux 6.9+ and CAP_SYS_ADMIN); munmap writes dirty pages back to the daemon.")
		}
		if d := s.Bdi; d != nil {
			fmt.Fprintf(b, "The mount's dirty-page limit (bdi %s): max_ratio %d%%, strict_limit %d, max_bytes %s, read_ahead_kb %d.\n",
				d.Device, d.MaxRatio, d.StrictLimit, fmtMiB(d.MaxBytes), d.ReadAheadKB)
			if d.MaxBytes > 0 && s.RegionBytes*2 < d.MaxBytes*3 {
				fmt.Fprintf(b, "A region well past max_bytes is written back to the daemon while in use: try --shm-size %s.\n", fmtSize(roundUpMiB(d.MaxBytes*3/2)))
			}
		}
		if len(s.Amortization) > 0 {
			fmt.Fprintf(b, "\nAmortization, %s: messages after which a shm ring + a msg doorbell beats msg\n", r.placementLabel(r.Settings.Placements[0]))
			tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "size\tmsg, per msg\tshm, per msg\t(doorbell)\tring\tone-time\tbreak-even\t")
			for _, a := range s.Amortization {
				be := "never"
				if a.Messages >= 0 {
					be = fmt.Sprintf("%d messages", a.Messages)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", fmtSize(int64(a.Size)), fmtNs(a.MsgNsPerMsg),
					fmtNs(a.ShmNsPerMsg), fmtNs(a.DoorbellNsPerMsg), fmtSize(a.RingBytes), fmtNs(a.OneTimeNs), be)
			}
			tw.Flush()
		}
	}
	if len(r.Targets) > 0 {
		fmt.Fprintf(b, "\nTargets ipcfs aims for (each a ratio measured in this run)\n")
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		for _, t := range r.Targets {
			met := "not met"
			if t.Met {
				met = "met"
			}
			fmt.Fprintf(tw, "%s\t%.2f\twant %s\t%s\t\n", t.Name, t.Ratio, t.Want, met)
		}
		tw.Flush()
	}
	fmt.Fprintf(b, "\nNotes\n")
	for _, n := range r.Notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// placementLabel names a placement for people.
func (r *Report) placementLabel(pl string) string {
	if pl == OneCPU {
		return fmt.Sprintf("every process on CPU %d", r.Settings.CPU)
	}
	return "unpinned"
}

// sizeOnce returns the size column of row i: the size on the first row of
// each size, blank after.
func sizeOnce[T Latency | Rate](rows []T, i int) string {
	size := func(i int) int {
		switch r := any(rows[i]).(type) {
		case Latency:
			return r.Size
		case Rate:
			return r.Size
		}
		return 0
	}
	if i > 0 && size(i-1) == size(i) {
		return ""
	}
	return fmtSize(int64(size(i)))
}

// fmtMiB formats n bytes in MiB with one decimal.
func fmtMiB(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func roundUpMiB(n int64) int64 {
	return (n + 1<<20 - 1) >> 20 << 20
}

func fmtSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func fmtNs(ns float64) string {
	switch {
	case ns == 0:
		return "-"
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	}
	return fmt.Sprintf("%.3g s", ns/1e9)
}

func fmtRatio(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", x)
}

func fmtCount(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", x)
}

func fmtMB(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", x)
}

func fmtGBps(bps float64) string {
	if bps == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f GB/s", bps/1e9)
}

func fmtLoad(l []float64) string {
	if len(l) == 0 {
		return "?"
	}
	return fmt.Sprintf("%.2f", l[0])
}
