package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcfs/ipcfs/bench"
	"github.com/ipcfs/ipcfs/internal/size"
)

// benchCmd is `ipcfs bench`. `ipcfs bench client ROLE …` and
// `ipcfs bench floor MOUNTPOINT` are the hidden entry points of its child
// processes: the clients and the reference FUSE server.
func benchCmd(args []string) int {
	if len(args) > 0 && args[0] == "client" {
		return bench.ClientMain(args[1:])
	}
	if len(args) > 0 && args[0] == "floor" {
		return bench.FloorMain(args[1:])
	}
	flags := flag.NewFlagSet("ipcfs bench", flag.ContinueOnError)
	flags.Usage = func() {} // printed below
	flags.SetOutput(io.Discard)
	sizes := flags.String("sizes", "64,4K,64K", "message sizes, comma-separated (K suffix; at most 124K)")
	asJSON := flags.Bool("json", false, "print JSON instead of the table")
	svg := flags.String("svg", "", "also write a plot of latency and throughput by size to `FILE` (SVG)")
	cellTime := flags.Duration("time", 2*time.Second, "measuring time of each transport at each size, split over the rounds")
	rounds := flags.Int("rounds", 3, "interleaved rounds")
	region := &size.Value{N: 16 << 20}
	flags.Var(region, "shm-size", "region size of the shm setup and copy measurements (K, M, G suffixes)")
	placements := flags.String("placements", "unpinned,one-cpu", "where the processes run, comma-separated: unpinned (the scheduler decides), one-cpu (every process on one CPU)")
	cpu := flags.Int("cpu", -1, "the CPU of one-cpu (default: the first this process may use)")
	only := flags.String("only", "", "measure only these, comma-separated: rtt, tput, shm (shm's amortization point needs tput)")
	withNATS := flags.Bool("nats", false, "also msg across two daemons joined to NATS JetStream (one embedding the server), on one of them, and the same exchange with nats.go directly; unpinned")
	natsTime := flags.Duration("nats-time", 0, "measuring time of each NATS transport at each size, split over the rounds (default: half of -time)")
	cpuProfile := flags.String("cpuprofile", "", "write a CPU profile of the serving daemon to `FILE`")
	if err := flags.Parse(args); err != nil {
		return usageError(flags, err, "usage: ipcfs bench [flags]")
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ipcfs bench: unexpected arguments %q\n", flags.Args())
		return 2
	}
	cfg := bench.Config{
		CellTime:  *cellTime,
		Rounds:    *rounds,
		ShmRegion: region.N,
		CPU:       *cpu,
		NATS:      *withNATS,
		NATSTime:  *natsTime,
		Progress:  os.Stderr,
	}
	for _, p := range strings.Split(*placements, ",") {
		p = strings.TrimSpace(p)
		if p != bench.Unpinned && p != bench.OneCPU {
			fmt.Fprintf(os.Stderr, "ipcfs bench: --placements: %q: want unpinned or one-cpu\n", p)
			return 2
		}
		cfg.Placements = append(cfg.Placements, p)
	}
	_, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS)
	cfg.ProgressTTY = err == nil
	for _, s := range strings.Split(*sizes, ",") {
		n, err := size.Parse(strings.TrimSpace(s))
		if err != nil || n < 1 || n > bench.MaxSize {
			fmt.Fprintf(os.Stderr, "ipcfs bench: --sizes: %q: want 1 to %d bytes\n", s, bench.MaxSize)
			return 2
		}
		cfg.Sizes = append(cfg.Sizes, int(n))
	}
	if *only != "" {
		for _, p := range strings.Split(*only, ",") {
			switch strings.TrimSpace(p) {
			case "rtt":
				cfg.Parts.RoundTrip = true
			case "tput":
				cfg.Parts.Throughput = true
			case "shm":
				cfg.Parts.Shm = true
			default:
				fmt.Fprintf(os.Stderr, "ipcfs bench: --only: %q: want rtt, tput or shm\n", p)
				return 2
			}
		}
	}
	if *cpuProfile != "" {
		cfg.DaemonArgs = []string{"--cpuprofile", *cpuProfile}
	}
	if cfg.Exe, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, "ipcfs bench:", err)
		return 1
	}

	// Ctrl-C cancels the run; Run still unmounts and removes its files.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			if err != context.Canceled { // cleanup failed too
				fmt.Fprintln(os.Stderr, "ipcfs bench:", err)
			}
			fmt.Fprintln(os.Stderr, "ipcfs bench: interrupted")
			return 130
		}
		fmt.Fprintln(os.Stderr, "ipcfs bench:", err)
		return 1
	}
	rep.Version = version()
	rep.Command = strings.Join(append([]string{"ipcfs", "bench"}, args...), " ")
	if *svg != "" {
		f, err := os.Create(*svg)
		if err == nil {
			err = rep.WriteSVG(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ipcfs bench: --svg:", err)
			return 1
		}
	}
	if *asJSON {
		err = rep.WriteJSON(os.Stdout)
	} else {
		err = rep.WriteText(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipcfs bench:", err)
		return 1
	}
	return 0
}
