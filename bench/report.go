package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
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

	Placements []Placement `json:"placements,omitempty"` // msg, floor, pipe, socket; in Settings.Placements' order
	NATS       *NATSResult `json:"nats,omitempty"`       // with --nats
	Shm        *ShmResult  `json:"shm,omitempty"`
	Targets    []Target    `json:"targets,omitempty"`
	Notes      []string    `json:"notes"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs       int       `json:"cpus"`
	CPUModel   string    `json:"cpu_model,omitempty"`
	Kernel     string    `json:"kernel"`
	Go         string    `json:"go"`
	LoadBefore []float64 `json:"loadavg_before,omitempty"` // 1, 5, 15 minutes
	LoadAfter  []float64 `json:"loadavg_after,omitempty"`
}

// Settings are the run's parameters.
type Settings struct {
	Sizes       []int    `json:"sizes"`
	CellTimeSec float64  `json:"cell_time_s"` // per transport and size, over all rounds
	Rounds      int      `json:"rounds"`
	ShmRegion   int64    `json:"shm_region_bytes"`
	Placements  []string `json:"placements"`
	CPU         int      `json:"one_cpu"` // the CPU of the one-cpu placement
	Clients     string   `json:"clients"` // what the clients are
}

// Placement is the message measurements with the processes placed one
// way: Unpinned or OneCPU.
type Placement struct {
	Name       string    `json:"name"`
	RoundTrip  []Latency `json:"round_trip,omitempty"`
	Throughput []Rate    `json:"throughput,omitempty"`
	Trivial    *Trivial  `json:"trivial_request,omitempty"`
}

// Trivial is the time of the least request a FUSE daemon can be sent, a
// 1-byte pread answered at once: of the floor server's status file and
// of an ipcfs channel's.
type Trivial struct {
	Floor        Sample  `json:"floor"`
	Msg          Sample  `json:"msg"`
	RatioToFloor float64 `json:"ratio_to_floor"` // the medians'
}

// Sample summarizes timed repetitions.
type Sample struct {
	Samples  int     `json:"samples"`
	MedianNs float64 `json:"median_ns"`
	P99Ns    float64 `json:"p99_ns"`
}

// Latency is the round trip of one transport at one size.
type Latency struct {
	Transport string  `json:"transport"`
	Size      int     `json:"size"`
	Samples   int     `json:"samples"`
	MedianNs  float64 `json:"median_ns"`
	P99Ns     float64 `json:"p99_ns"`
	// The median and p99 divided by the pipe's, and by the floor's, at
	// the same size: below 1 is faster.
	RatioToPipe     float64 `json:"ratio_to_pipe"`
	P99RatioToPipe  float64 `json:"p99_ratio_to_pipe"`
	RatioToFloor    float64 `json:"ratio_to_floor"`
	P99RatioToFloor float64 `json:"p99_ratio_to_floor"`
}

// Rate is the one-way throughput of one transport at one size.
type Rate struct {
	Transport  string  `json:"transport"`
	Size       int     `json:"size"`
	Messages   int64   `json:"messages"`
	MsgsPerSec float64 `json:"msgs_per_s"`
	MBPerSec   float64 `json:"mb_per_s"`
	// The rate divided by the pipe's, and by the floor's, at the same
	// size: above 1 is faster.
	RatioToPipe  float64 `json:"ratio_to_pipe"`
	RatioToFloor float64 `json:"ratio_to_floor"`
}

// Compare is one quantity measured through shm and through /dev/shm.
type Compare struct {
	Shm    float64 `json:"shm"`
	DevShm float64 `json:"dev_shm"`
	Ratio  float64 `json:"ratio"` // Shm / DevShm
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
	// Path is how the daemon served the mappings: "passthrough" (the
	// kernel maps the region's memory file) or "page cache".
	Path string `json:"path,omitempty"`
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
// putting them in a shared ring and sending a doorbell through msg (the
// fastest doorbell ipcfs has), with the processes placed as in
// Placements[0].
type Amortization struct {
	Size             int     `json:"size"`
	RingBytes        int64   `json:"ring_bytes"`
	OneTimeNs        float64 `json:"one_time_ns"`         // the ring's open+ftruncate+mmap+first touch+munmap
	MsgNsPerMsg      float64 `json:"msg_ns_per_msg"`      // msg one-way, per message
	DoorbellNsPerMsg float64 `json:"doorbell_ns_per_msg"` // an 8-byte msg one-way, per message
	ShmNsPerMsg      float64 `json:"shm_ns_per_msg"`      // doorbell + copy in + copy out
	// Messages after which shm is cheaper in total; -1: never (a
	// doorbell and two copies cost as much as the message).
	Messages int64 `json:"break_even_messages"`
}

// Target is one of the goals ipcfs aims for, as measured in this run: a
// ratio to a pipe or to /dev/shm, and the bound it should keep (see
// targets for the list).
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
			LoadBefore: loadAverage(),
		},
		Settings: Settings{
			Sizes:       cfg.Sizes,
			CellTimeSec: cfg.CellTime.Seconds(),
			Rounds:      cfg.Rounds,
			ShmRegion:   cfg.ShmRegion,
			Placements:  cfg.Placements,
			CPU:         cfg.CPU,
			Clients:     clientsKind,
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

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
