package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// compare pairs a quantity measured through shm and through /dev/shm.
func compare(shm, devshm float64) Compare {
	return Compare{Shm: shm, DevShm: devshm, Ratio: ratio(shm, devshm)}
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

// targets are the goals ipcfs aims for, each a ratio from this run: a msg
// round trip of 64 B at most 2× a pipe's; msg throughput at 64 KiB at
// least half a pipe's; copies through a shm mapping (pages faulted in) at
// least 0.95× /dev/shm's; shm setup plus first touch at most 3× /dev/shm's.
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
