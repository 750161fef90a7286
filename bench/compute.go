package bench

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// compare pairs a quantity measured through shm and through /dev/shm.
func compare(shm, devshm float64) Compare {
	return Compare{Shm: shm, DevShm: devshm, Ratio: ratio(shm, devshm)}
}

// fill computes the report from the raw measurements.
func (r *Report) fill(cfg Config, m *measurements) {
	for _, pl := range cfg.Placements {
		p := Placement{Name: pl}
		if cfg.Parts.RoundTrip {
			for _, size := range cfg.Sizes {
				pipe, floor := m.rtt[cell{pl, Pipe, size}], m.rtt[cell{pl, Floor, size}]
				pipeMedian, pipeP99 := percentile(pipe, 50), percentile(pipe, 99)
				floorMedian, floorP99 := percentile(floor, 50), percentile(floor, 99)
				for _, t := range transports {
					s := m.rtt[cell{pl, t, size}]
					med, p99 := percentile(s, 50), percentile(s, 99)
					p.RoundTrip = append(p.RoundTrip, Latency{
						Transport: t, Size: size, Samples: len(s), MedianNs: med, P99Ns: p99,
						RatioToPipe: ratio(med, pipeMedian), P99RatioToPipe: ratio(p99, pipeP99),
						RatioToFloor: ratio(med, floorMedian), P99RatioToFloor: ratio(p99, floorP99),
					})
				}
			}
			tr := &Trivial{Floor: sample(m.trivial[cell{pl, Floor, 0}]), Msg: sample(m.trivial[cell{pl, Msg, 0}])}
			tr.RatioToFloor = ratio(tr.Msg.MedianNs, tr.Floor.MedianNs)
			if tr.Floor.Samples > 0 || tr.Msg.Samples > 0 {
				p.Trivial = tr
			}
		}
		if cfg.Parts.Throughput {
			for _, size := range cfg.Sizes {
				pipeRate, _ := m.rate(cell{pl, Pipe, size})
				floorRate, _ := m.rate(cell{pl, Floor, size})
				for _, t := range transports {
					rate, n := m.rate(cell{pl, t, size})
					p.Throughput = append(p.Throughput, Rate{
						Transport: t, Size: size, Messages: n, MsgsPerSec: rate,
						MBPerSec: rate * float64(size) / 1e6, RatioToPipe: ratio(rate, pipeRate),
						RatioToFloor: ratio(rate, floorRate),
					})
				}
			}
		}
		r.Placements = append(r.Placements, p)
	}
	if cfg.NATS {
		r.NATS = m.natsResult(cfg)
	}
	if cfg.Parts.Shm {
		r.Shm = m.shmResult(cfg)
	}
	r.Targets = r.targets()
	r.Notes = notes(cfg)
}

// sample summarizes xs (and sorts it).
func sample(xs []int64) Sample {
	return Sample{Samples: len(xs), MedianNs: percentile(xs, 50), P99Ns: percentile(xs, 99)}
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
		if rate, _ := m.rate(cell{m.doorbell.placement, Msg, size}); rate > 0 {
			a.MsgNsPerMsg = 1e9 / rate
		}
		if doorbell > 0 && res.CopyIn.Shm > 0 && res.CopyOut.Shm > 0 {
			a.DoorbellNsPerMsg = 1e9 / doorbell
			a.ShmNsPerMsg = a.DoorbellNsPerMsg + 1e9*float64(size)/res.CopyIn.Shm + 1e9*float64(size)/res.CopyOut.Shm
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

// targets are the goals ipcfs aims for, each a ratio from this run: in
// every placement, a msg round trip at most 1.15× the floor's at every
// size, a trivial request at most 1.2× the floor's, 64 B one-way
// throughput at least 0.9× the floor's; for shm, setup plus first touch
// at most 1.1× /dev/shm's, teardown at most 1.5×, copies through the
// mapping at least 0.98×.
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
	for _, p := range r.Placements {
		for _, l := range p.RoundTrip {
			if l.Transport == Msg {
				add(fmt.Sprintf("%s: msg round trip, %s, x floor", p.Name, fmtSize(int64(l.Size))), l.RatioToFloor, true, 1.15)
			}
		}
		if p.Trivial != nil {
			add(fmt.Sprintf("%s: trivial request, x floor", p.Name), p.Trivial.RatioToFloor, true, 1.2)
		}
		for _, t := range p.Throughput {
			if t.Transport == Msg && t.Size == 64 {
				add(fmt.Sprintf("%s: msg one-way, 64 B, x floor", p.Name), t.RatioToFloor, false, 0.9)
			}
		}
	}
	if s := r.Shm; s != nil {
		add("shm setup + first touch, x /dev/shm", s.Setup.Ratio, true, 1.1)
		add("shm teardown, x /dev/shm", s.Teardown.Ratio, true, 1.5)
		add("shm copy into the mapping, x /dev/shm", s.CopyIn.Ratio, false, 0.98)
		add("shm copy out of the mapping, x /dev/shm", s.CopyOut.Ratio, false, 0.98)
	}
	return ts
}

func notes(cfg Config) []string {
	n := []string{
		"Clients: " + clientsKind + ". Every client is a process of its own on blocking descriptors, retrying EINTR: what is timed is the IPC, not Go's scheduler or poller.",
		"floor: a minimal FUSE server built into ipcfs (`ipcfs bench floor`: raw /dev/fuse, two serving threads locked to OS threads, no library), serving channels shaped like ipcfs's with the same open flags: a WRITE answers the READ parked on the other side, the reader first. It is the least any FUSE daemon costs for msg's exchange; x floor is msg's figure divided by it. Both daemons are child processes of `ipcfs bench`.",
		fmt.Sprintf("Placements: %s. unpinned: the scheduler places the clients and the daemons' threads. one-cpu: every thread of every process (clients, both daemons, ipcfs bench) pinned to one CPU with sched_setaffinity.", strings.Join(cfg.Placements, ", ")),
		fmt.Sprintf("Every transport was measured in this run, in %d interleaved rounds with the order of transports and placements rotated; each cell totals %v per placement.", cfg.Rounds, cfg.CellTime),
	}
	if cfg.Parts.RoundTrip {
		n = append(n,
			"Round trip: one process writes a message and reads the echo, the other echoes; msg and floor over two channels, pipe over two pipes, unix over one SOCK_SEQPACKET socketpair; 50 untimed round trips first. A FUSE round trip is four requests. x pipe, x floor: median (and p99) divided by the pipe's or the floor's; lower is better.",
			"Trivial request: a 1-byte pread(2) of a channel's status file, which the daemon answers at once: one FUSE request.",
		)
	}
	if cfg.Parts.Throughput {
		n = append(n, "One-way: one process writes messages as fast as it can, another reads them; the rate runs from the reader's first message to its last. A pipe is a byte stream read a message's size at a time, with its default 64 KiB capacity; the floor's queue holds as many messages and bytes as msg's by default. x pipe, x floor: rate divided by the pipe's or the floor's; higher is better. MB = 10^6 bytes.")
	}
	if cfg.NATS {
		n = append(n, natsNotes(cfg)...)
	}
	if cfg.Parts.Shm {
		n = append(n,
			"shm setup: mkdir of a channel, open, ftruncate, mmap(MAP_SHARED), and a store to every page; /dev/shm: the same steps on tmpfs (mkdir, open O_CREAT). Teardown: munmap, close, rmdir (and unlink); on the page-cache path munmap of shm writes the dirty pages back to the daemon. Unpinned.",
			"shm copy: Go's copy() of the whole region into and out of the mapping, after every page was faulted in and dirtied once (steady state). GB = 10^9 bytes.",
		)
		if cfg.Parts.Throughput {
			n = append(n, fmt.Sprintf("Amortization (%s): msg costs (one-way time per message) × N; shm costs a %d-message ring's open+ftruncate+mmap+first touch+munmap once, then per message an %d-byte msg doorbell (one-way time; msg is the fastest doorbell ipcfs has) plus a copy in and a copy out at the measured bandwidths (the reader returns slots through a counter in the ring, not a message). Break-even: the N from which shm is cheaper; never if shm saves less than %.0f%% of msg's time a message (the noise).", cfg.Placements[0], ringSlots, doorbellSize, minSaving*100))
		}
	}
	return n
}
