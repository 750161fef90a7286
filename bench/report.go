package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// Report is the result of a run. Times are in nanoseconds, bandwidths in
// bytes per second, MB is 10^6 bytes. A zero number means "not measured".
type Report struct {
	Version    string    `json:"version,omitempty"` // of ipcfs, set by the caller
	Command    string    `json:"command,omitempty"` // set by the caller
	Date       time.Time `json:"date"`
	ElapsedSec float64   `json:"elapsed_s"`
	Machine    Machine   `json:"machine"`
	Settings   Settings  `json:"settings"`

	RoundTrip  []Latency  `json:"round_trip,omitempty"`
	FuseFloor  *Floor     `json:"fuse_request,omitempty"`
	Throughput []Rate     `json:"throughput,omitempty"`
	Shm        *ShmResult `json:"shm,omitempty"`
	Targets    []Target   `json:"targets,omitempty"`
	Notes      []string   `json:"notes"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs       int       `json:"cpus"`
	CPUModel   string    `json:"cpu_model,omitempty"`
	Kernel     string    `json:"kernel"`
	Go         string    `json:"go"`
	Pinning    string    `json:"pinning"`
	LoadBefore []float64 `json:"loadavg_before,omitempty"` // 1, 5, 15 minutes
	LoadAfter  []float64 `json:"loadavg_after,omitempty"`
}

// Settings are the run's parameters.
type Settings struct {
	Sizes       []int   `json:"sizes"`
	CellTimeSec float64 `json:"cell_time_s"` // per transport and size, over all rounds
	Rounds      int     `json:"rounds"`
	ShmRegion   int64   `json:"shm_region_bytes"`
}

// Latency is the round trip of one transport at one size.
type Latency struct {
	Transport string  `json:"transport"`
	Size      int     `json:"size"`
	Samples   int     `json:"samples"`
	MedianNs  float64 `json:"median_ns"`
	P99Ns     float64 `json:"p99_ns"`
	// The median and p99 divided by the pipe's at the same size: below
	// 1 is faster than a pipe.
	RatioToPipe    float64 `json:"ratio_to_pipe"`
	P99RatioToPipe float64 `json:"p99_ratio_to_pipe"`
}

// Floor is the time of one FUSE request that the daemon answers at once
// (a pread of a channel's status file). A msg round trip makes four
// requests, and two are on its critical path: each side's WRITE, which
// the daemon answers together with the other side's READ, parked before.
type Floor struct {
	Samples  int     `json:"samples"`
	MedianNs float64 `json:"median_ns"`
	P99Ns    float64 `json:"p99_ns"`
	// Two requests' median divided by the pipe's round trip at the
	// smallest size: about msg's ratio if ipcfs took no time at all.
	TwoToPipe float64 `json:"two_requests_ratio_to_pipe"`
}

// Rate is the one-way throughput of one transport at one size.
type Rate struct {
	Transport  string  `json:"transport"`
	Size       int     `json:"size"`
	Messages   int64   `json:"messages"`
	MsgsPerSec float64 `json:"msgs_per_s"`
	MBPerSec   float64 `json:"mb_per_s"`
	// The rate divided by the pipe's at the same size: above 1 is faster
	// than a pipe.
	RatioToPipe float64 `json:"ratio_to_pipe"`
}

// Compare is one quantity measured through shm and through /dev/shm.
type Compare struct {
	Shm    float64 `json:"shm"`
	DevShm float64 `json:"dev_shm"`
	Ratio  float64 `json:"ratio"` // Shm / DevShm
}

func compare(shm, devshm float64) Compare {
	return Compare{Shm: shm, DevShm: devshm, Ratio: ratio(shm, devshm)}
}

// ShmResult compares shm with /dev/shm.
type ShmResult struct {
	RegionBytes int64   `json:"region_bytes"`
	Setup       Compare `json:"setup_ns"` // mkdir + open + ftruncate + mmap + first touch
	Mkdir       Compare `json:"mkdir_ns"`
	Map         Compare `json:"map_ns"`      // open + ftruncate + mmap
	Touch       Compare `json:"touch_ns"`    // a store to every page
	Teardown    Compare `json:"teardown_ns"` // munmap + close + rmdir (+ unlink)
	CopyIn      Compare `json:"copy_in_bps"`
	CopyOut     Compare `json:"copy_out_bps"`

	Amortization []Amortization `json:"amortization,omitempty"`
	Bdi          *Bdi           `json:"bdi,omitempty"`
}

// Bdi is the writeback settings of the mount (/sys/class/bdi/DEVICE/;
// -1: unknown). The kernel gives a FUSE mount max_ratio 1 and
// strict_limit 1: once the dirty pages of its mappings pass MaxBytes, the
// kernel writes them back to the daemon continuously and throttles the
// writers, so a region larger than that is much slower to fill.
type Bdi struct {
	Device      string `json:"device"`
	MaxRatio    int64  `json:"max_ratio"`
	StrictLimit int64  `json:"strict_limit"`
	MaxBytes    int64  `json:"max_bytes"`
	ReadAheadKB int64  `json:"read_ahead_kb"`
}

// Amortization compares sending messages of one size through msg with
// putting them in a shared ring and sending a doorbell through msg.
type Amortization struct {
	Size        int     `json:"size"`
	RingBytes   int64   `json:"ring_bytes"`
	OneTimeNs   float64 `json:"one_time_ns"`    // the ring's open+ftruncate+mmap+first touch+munmap
	MsgNsPerMsg float64 `json:"msg_ns_per_msg"` // msg one-way, per message
	ShmNsPerMsg float64 `json:"shm_ns_per_msg"` // doorbell + copy in + copy out
	// Messages after which shm is cheaper in total; -1: never (a
	// doorbell and two copies cost as much as the message).
	Messages int64 `json:"break_even_messages"`
}

// Target is one of the goals of issue 5, as measured in this run.
type Target struct {
	Name  string  `json:"name"`
	Ratio float64 `json:"ratio"`
	Want  string  `json:"want"` // "<= 2" or ">= 0.5"
	Met   bool    `json:"met"`
}

func newReport(cfg Config, started time.Time) *Report {
	var uts unix.Utsname
	unix.Uname(&uts)
	return &Report{
		Date: started.UTC().Truncate(time.Second),
		Machine: Machine{
			CPUs:       runtime.NumCPU(),
			CPUModel:   cpuModel(),
			Kernel:     unix.ByteSliceToString(uts.Sysname[:]) + " " + unix.ByteSliceToString(uts.Release[:]),
			Go:         runtime.Version(),
			Pinning:    "none: the scheduler places the clients and the daemon's threads",
			LoadBefore: loadAverage(),
		},
		Settings: Settings{
			Sizes:       cfg.Sizes,
			CellTimeSec: cfg.CellTime.Seconds(),
			Rounds:      cfg.Rounds,
			ShmRegion:   cfg.ShmRegion,
		},
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func loadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	var l [3]float64
	if n, _ := fmt.Sscan(string(b), &l[0], &l[1], &l[2]); n != 3 {
		return nil
	}
	return l[:]
}

// fill computes the report from the raw measurements.
func (r *Report) fill(cfg Config, m *measurements) {
	if cfg.Parts.RoundTrip {
		for _, size := range cfg.Sizes {
			pipe := cell{Pipe, size}
			pipeMedian, pipeP99 := percentile(m.rtt[pipe], 50), percentile(m.rtt[pipe], 99)
			for _, t := range transports {
				s := m.rtt[cell{t, size}]
				med, p99 := percentile(s, 50), percentile(s, 99)
				r.RoundTrip = append(r.RoundTrip, Latency{
					Transport: t, Size: size, Samples: len(s), MedianNs: med, P99Ns: p99,
					RatioToPipe: ratio(med, pipeMedian), P99RatioToPipe: ratio(p99, pipeP99),
				})
			}
		}
	}
	if cfg.Parts.RoundTrip && len(m.floor) > 0 {
		f := &Floor{Samples: len(m.floor), MedianNs: percentile(m.floor, 50), P99Ns: percentile(m.floor, 99)}
		smallest := slices.Min(cfg.Sizes)
		f.TwoToPipe = ratio(2*f.MedianNs, percentile(m.rtt[cell{Pipe, smallest}], 50))
		r.FuseFloor = f
	}
	if cfg.Parts.Throughput {
		for _, size := range cfg.Sizes {
			pipeRate, _ := m.rate(cell{Pipe, size})
			for _, t := range transports {
				rate, n := m.rate(cell{t, size})
				r.Throughput = append(r.Throughput, Rate{
					Transport: t, Size: size, Messages: n, MsgsPerSec: rate,
					MBPerSec: rate * float64(size) / 1e6, RatioToPipe: ratio(rate, pipeRate),
				})
			}
		}
	}
	if cfg.Parts.Shm {
		r.Shm = m.shmResult(cfg)
	}
	r.Targets = r.targets()
	r.Notes = notes(cfg)
}

// rate returns messages per second over all rounds, and the message count.
func (m *measurements) rate(c cell) (float64, int64) {
	var n int64
	var d time.Duration
	for _, p := range m.tput[c] {
		n += p.msgs
		d += p.elapsed
	}
	if d <= 0 {
		return 0, n
	}
	return float64(n) / d.Seconds(), n
}

func (m *measurements) shmResult(cfg Config) *ShmResult {
	steps := func(devshm bool, region int64, f func(shmTimes) int64) float64 {
		var xs []float64
		for _, t := range m.setup[setupKey{devshm, region}] {
			xs = append(xs, float64(f(t)))
		}
		return median(xs)
	}
	both := func(f func(shmTimes) int64) Compare {
		return compare(steps(false, cfg.ShmRegion, f), steps(true, cfg.ShmRegion, f))
	}
	res := &ShmResult{
		RegionBytes: cfg.ShmRegion,
		Setup:       both(func(t shmTimes) int64 { return t.Mkdir + t.Map + t.Touch }),
		Mkdir:       both(func(t shmTimes) int64 { return t.Mkdir }),
		Map:         both(func(t shmTimes) int64 { return t.Map }),
		Touch:       both(func(t shmTimes) int64 { return t.Touch }),
		Teardown:    both(func(t shmTimes) int64 { return t.Unmap + t.Remove }),
		CopyIn:      compare(median(m.copyIn[false]), median(m.copyIn[true])),
		CopyOut:     compare(median(m.copyOut[false]), median(m.copyOut[true])),
	}
	if !cfg.Parts.Throughput {
		return res
	}
	doorbell, _ := m.rate(m.doorbell)
	for _, size := range cfg.Sizes {
		ring := ringRegion(size)
		a := Amortization{
			Size:      size,
			RingBytes: ring,
			// The channel exists for the doorbell anyway: mkdir and
			// rmdir are not part of what shm adds.
			OneTimeNs: steps(false, ring, func(t shmTimes) int64 { return t.Map + t.Touch + t.Unmap }),
			Messages:  -1,
		}
		if rate, _ := m.rate(cell{Msg, size}); rate > 0 {
			a.MsgNsPerMsg = 1e9 / rate
		}
		if doorbell > 0 && res.CopyIn.Shm > 0 && res.CopyOut.Shm > 0 {
			a.ShmNsPerMsg = 1e9/doorbell + 1e9*float64(size)/res.CopyIn.Shm + 1e9*float64(size)/res.CopyOut.Shm
		}
		if saved := a.MsgNsPerMsg - a.ShmNsPerMsg; a.MsgNsPerMsg > 0 && a.ShmNsPerMsg > 0 && saved > minSaving*a.MsgNsPerMsg {
			a.Messages = int64(math.Ceil(a.OneTimeNs / saved))
		}
		res.Amortization = append(res.Amortization, a)
	}
	return res
}

// minSaving is the smallest saving per message, as a fraction of msg's
// time, that counts: below it the two differ by less than the noise of
// two throughput measurements, and a break-even point would be an
// artifact (a 64-byte message and an 8-byte doorbell cost the same).
const minSaving = 0.1

// targets are issue 5's goals for this machine, each a ratio.
func (r *Report) targets() []Target {
	var ts []Target
	add := func(name string, v float64, atMost bool, limit float64) {
		if v == 0 {
			return
		}
		t := Target{Name: name, Ratio: v}
		if atMost {
			t.Want, t.Met = fmt.Sprintf("<= %g", limit), v <= limit
		} else {
			t.Want, t.Met = fmt.Sprintf(">= %g", limit), v >= limit
		}
		ts = append(ts, t)
	}
	for _, l := range r.RoundTrip {
		if l.Transport == Msg && l.Size == 64 {
			add("msg round trip, 64 B, x pipe", l.RatioToPipe, true, 2)
		}
	}
	for _, t := range r.Throughput {
		if t.Transport == Msg && t.Size == 64<<10 {
			add("msg throughput, 64 KiB, x pipe", t.RatioToPipe, false, 0.5)
		}
	}
	if s := r.Shm; s != nil {
		add("shm copy into the mapping, x /dev/shm", s.CopyIn.Ratio, false, 0.95)
		add("shm copy out of the mapping, x /dev/shm", s.CopyOut.Ratio, false, 0.95)
		add("shm setup + first touch, x /dev/shm", s.Setup.Ratio, true, 3)
	}
	return ts
}

func notes(cfg Config) []string {
	n := []string{
		"Every client is a process of its own using raw blocking read(2)/write(2) (golang.org/x/sys/unix) on blocking descriptors, retrying EINTR: the time is the IPC's, not Go's poller's. The mount is served by a child `ipcfs mount`.",
		"No CPU pinning: the scheduler places the two clients and the daemon's threads.",
		fmt.Sprintf("Every transport was measured in this run, in %d interleaved rounds with the order rotated; each cell totals %v.", cfg.Rounds, cfg.CellTime),
	}
	if cfg.Parts.RoundTrip {
		n = append(n, "Round trip: one process writes a message and reads the echo, the other echoes; msg over two channels, pipe over two pipes, unix over one SOCK_SEQPACKET socketpair; 50 untimed round trips first. x pipe: median (and p99) divided by the pipe's; lower is better.")
	}
	if cfg.Parts.Throughput {
		n = append(n, "One-way: one process writes messages as fast as it can, another reads them; the rate runs from the reader's first message to its last. A pipe is a byte stream read a message's size at a time, with its default 64 KiB capacity. x pipe: rate divided by the pipe's; higher is better. MB = 10^6 bytes.")
	}
	if cfg.Parts.Shm {
		n = append(n,
			"shm setup: mkdir of a channel, open, ftruncate, mmap(MAP_SHARED), and a store to every page; /dev/shm: the same steps on tmpfs (mkdir, open O_CREAT). Teardown: munmap, close, rmdir (and unlink); munmap of shm writes the dirty pages back to the daemon.",
			"shm copy: Go's copy() of the whole region into and out of the mapping, after every page was faulted in and dirtied once (steady state). GB = 10^9 bytes.",
		)
		if cfg.Parts.Throughput {
			n = append(n, fmt.Sprintf("Amortization: msg costs (one-way time per message) × N; shm costs a %d-message ring's open+ftruncate+mmap+first touch+munmap once, then per message an %d-byte msg doorbell (one-way time) plus a copy in and a copy out at the measured bandwidths (the reader returns slots through a counter in the ring, not a message). Break-even: the N from which shm is cheaper; never if shm saves less than %.0f%% of msg's time a message (the noise).", ringSlots, doorbellSize, minSaving*100))
		}
	}
	return n
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as the table `ipcfs bench` prints.
func (r *Report) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	m := r.Machine
	fmt.Fprintf(b, "ipcfs bench: msg and shm against a pipe, a Unix socket and /dev/shm\n")
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
	fmt.Fprintf(b, "\n%s, no CPU pinning, load %s -> %s, took %.0fs\n",
		r.Date.Format(time.RFC3339), fmtLoad(m.LoadBefore), fmtLoad(m.LoadAfter), r.ElapsedSec)

	if len(r.RoundTrip) > 0 {
		fmt.Fprintf(b, "\nRound trip (ping-pong between two processes; lower is better)\n")
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "size\ttransport\tmedian\tp99\tx pipe\tp99 x pipe\tround trips\t")
		for i, l := range r.RoundTrip {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", sizeOnce(r.RoundTrip, i), l.Transport,
				fmtNs(l.MedianNs), fmtNs(l.P99Ns), fmtRatio(l.RatioToPipe), fmtRatio(l.P99RatioToPipe), l.Samples)
		}
		tw.Flush()
	}
	if f := r.FuseFloor; f != nil {
		fmt.Fprintf(b, "\nOne FUSE request (a pread of a channel's status file, answered at once): median %s, p99 %s.\n", fmtNs(f.MedianNs), fmtNs(f.P99Ns))
		fmt.Fprintf(b, "A msg round trip has two on its critical path (each WRITE, answered with the other side's parked READ):\n")
		fmt.Fprintf(b, "%s, %s x the pipe's round trip at %s, before ipcfs does any work.\n",
			fmtNs(2*f.MedianNs), fmtRatio(f.TwoToPipe), fmtSize(int64(slices.Min(r.Settings.Sizes))))
	}
	if len(r.Throughput) > 0 {
		fmt.Fprintf(b, "\nOne-way throughput (one writer process, one reader process; higher is better)\n")
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "size\ttransport\tmsgs/s\tMB/s\tx pipe\tmessages\t")
		for i, t := range r.Throughput {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t\n", sizeOnce(r.Throughput, i), t.Transport,
				fmtCount(t.MsgsPerSec), fmtMB(t.MBPerSec), fmtRatio(t.RatioToPipe), t.Messages)
		}
		tw.Flush()
	}
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
		if d := s.Bdi; d != nil {
			fmt.Fprintf(b, "The mount's dirty-page limit (bdi %s): max_ratio %d%%, strict_limit %d, max_bytes %s, read_ahead_kb %d.\n",
				d.Device, d.MaxRatio, d.StrictLimit, fmtMiB(d.MaxBytes), d.ReadAheadKB)
			if d.MaxBytes > 0 && s.RegionBytes*2 < d.MaxBytes*3 {
				fmt.Fprintf(b, "A region well past max_bytes is written back to the daemon while in use: try --shm-size %s.\n", fmtSize(roundUpMiB(d.MaxBytes*3/2)))
			}
		}
		if len(s.Amortization) > 0 {
			fmt.Fprintf(b, "\nAmortization: messages after which shm + a msg doorbell beats msg\n")
			tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "size\tmsg, per msg\tshm, per msg\tring\tone-time\tbreak-even\t")
			for _, a := range s.Amortization {
				be := "never"
				if a.Messages >= 0 {
					be = fmt.Sprintf("%d messages", a.Messages)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", fmtSize(int64(a.Size)), fmtNs(a.MsgNsPerMsg),
					fmtNs(a.ShmNsPerMsg), fmtSize(a.RingBytes), fmtNs(a.OneTimeNs), be)
			}
			tw.Flush()
		}
	}
	if len(r.Targets) > 0 {
		fmt.Fprintf(b, "\nTargets (issue 5; ratios from this run)\n")
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
