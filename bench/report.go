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

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
