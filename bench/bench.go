package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// MaxSize is the largest message size Run accepts, 124 KiB: msg takes
// messages up to 1 MiB - 4 KiB + 1, but a SOCK_SEQPACKET socket with the
// default buffers does not, and every size is measured on every transport.
const MaxSize = 31 * 4096

// Transports of the message measurements, the pipe first: it is the
// reference of every ratio, with the floor.
const (
	Pipe   = "pipe"
	Socket = "unix"  // AF_UNIX, SOCK_SEQPACKET
	Floor  = "floor" // the minimal FUSE server of floor.go: the least any FUSE daemon costs
	Msg    = "msg"
)

var transports = []string{Pipe, Socket, Floor, Msg}

// Placements: where the clients and the daemons run.
const (
	Unpinned = "unpinned" // wherever the scheduler puts them
	OneCPU   = "one-cpu"  // every process on one CPU (sched_setaffinity)
)

// doorbellSize is the message size of a doorbell: a note that data is in
// the shared region, which also says where.
const doorbellSize = 8

// ringSlots is how many messages the shared region of the amortization
// model holds.
const ringSlots = 16

// Parts selects measurements.
type Parts struct {
	RoundTrip  bool // round-trip latency of msg, pipe, socket
	Throughput bool // one-way throughput of msg, pipe, socket
	Shm        bool // shm against /dev/shm, and the amortization point (needs Throughput)
}

// Config says what Run measures.
type Config struct {
	Exe         string        // the ipcfs binary: it serves the mount and runs the clients
	Sizes       []int         // message sizes in bytes, each 1..MaxSize; default 64, 4 KiB, 64 KiB
	CellTime    time.Duration // measuring time of one transport at one size, split over Rounds; default 1 s
	Rounds      int           // interleaved rounds; default 3
	ShmRegion   int64         // region size of the shm setup and copy measurements; default 16 MiB
	Parts       Parts         // zero: everything
	Placements  []string      // Unpinned, OneCPU; default both
	CPU         int           // the CPU of OneCPU; -1 (default): the first the run may use
	DaemonArgs  []string      // extra flags for `ipcfs mount`, e.g. --cpuprofile FILE
	NATS        bool          // also msg on mounts joined to NATS JetStream, and nats.go directly (unpinned)
	NATSTime    time.Duration // measuring time of one NATS transport at one size, split over Rounds; default CellTime / 2
	Progress    io.Writer     // where the progress line goes; nil: nowhere
	ProgressTTY bool          // Progress is a terminal: rewrite one line instead of printing lines
}

func (c Config) withDefaults() (Config, error) {
	if c.Exe == "" {
		return c, errors.New("bench: no ipcfs binary")
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []int{64, 4 << 10, 64 << 10}
	}
	for _, s := range c.Sizes {
		if s < 1 || s > MaxSize {
			return c, fmt.Errorf("bench: message size %d: want 1 to %d bytes (the largest write that is always one message)", s, MaxSize)
		}
	}
	if c.CellTime <= 0 {
		c.CellTime = 2 * time.Second
	}
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	if c.NATSTime <= 0 {
		c.NATSTime = c.CellTime / 2
	}
	if c.ShmRegion <= 0 {
		c.ShmRegion = 16 << 20
	}
	if len(c.Placements) == 0 {
		c.Placements = []string{Unpinned, OneCPU}
	}
	for i, p := range c.Placements {
		if p != Unpinned && p != OneCPU || slices.Contains(c.Placements[:i], p) {
			return c, fmt.Errorf("bench: placement %q: want %s or %s, once each", p, Unpinned, OneCPU)
		}
	}
	if c.Parts == (Parts{}) {
		c.Parts = Parts{RoundTrip: true, Throughput: true, Shm: true}
	}
	return c, nil
}

// Run mounts a private ipcfs served by a child process, measures, cleans
// up, and returns the report. Canceling ctx stops the measurement, and Run
// still cleans up before it returns ctx's error.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	started := time.Now()
	rep = newReport(cfg, started)
	e := &env{cfg: cfg, prog: newProgress(cfg, started)}
	defer func() {
		cerr := e.close()
		e.prog.done()
		if ctx.Err() != nil {
			err = ctx.Err() // whatever failed after that failed because of it
		}
		if cerr != nil {
			err = errors.Join(err, cerr)
		}
		if err != nil {
			rep = nil
		}
	}()
	if err := e.open(ctx); err != nil {
		return nil, err
	}
	rep.Settings.CPU = e.cpus.cpu

	m := newMeasurements(cfg)
	for round := range cfg.Rounds {
		// Placements alternate within each round, in turn first.
		for i := range cfg.Placements {
			pl := cfg.Placements[(i+round)%len(cfg.Placements)]
			if err := e.place(pl); err != nil {
				return nil, err
			}
			if cfg.Parts.RoundTrip {
				if err := e.roundTrips(ctx, m, round, pl); err != nil {
					return nil, err
				}
			}
			if cfg.Parts.Throughput {
				if err := e.throughputs(ctx, m, round, pl); err != nil {
					return nil, err
				}
			}
		}
		if cfg.NATS {
			if err := e.place(Unpinned); err != nil {
				return nil, err
			}
			if err := e.natsRounds(ctx, m, round); err != nil {
				return nil, err
			}
		}
	}
	if cfg.Parts.Shm {
		if err := e.place(Unpinned); err != nil {
			return nil, err
		}
		if err := e.shm(ctx, m); err != nil {
			return nil, err
		}
	}
	rep.fill(cfg, m)
	if rep.Shm != nil {
		rep.Shm.Path = shmPath(e.daemon.Log())
		if rep.Shm.Path != "passthrough" {
			rep.Shm.Bdi = e.bdi // the page cache's writeback limit matters only there
		}
	}
	rep.Machine.LoadAfter = loadAverage()
	rep.ElapsedSec = time.Since(started).Seconds()
	return rep, nil
}

// measurements collects raw results across rounds.
type measurements struct {
	rtt      map[cell][]int64     // round trips, ns
	trivial  map[cell][]int64     // 1-byte preads of status (size 0), ns
	tput     map[cell][]rateParts // one-way runs
	setup    map[setupKey][]shmTimes
	copyIn   map[bool][]float64 // by devshm: bytes per second
	copyOut  map[bool][]float64
	doorbell cell // msg at doorbellSize, in the first placement
}

type cell struct {
	placement string
	transport string
	size      int
}

type rateParts struct {
	msgs    int64 // messages after the first
	elapsed time.Duration
}

type setupKey struct {
	devshm bool
	region int64
}

func newMeasurements(cfg Config) *measurements {
	return &measurements{
		rtt:      make(map[cell][]int64),
		trivial:  make(map[cell][]int64),
		tput:     make(map[cell][]rateParts),
		setup:    make(map[setupKey][]shmTimes),
		copyIn:   make(map[bool][]float64),
		copyOut:  make(map[bool][]float64),
		doorbell: cell{cfg.Placements[0], Msg, doorbellSize},
	}
}
