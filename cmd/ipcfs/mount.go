package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/ipcfs/ipcfs/channels"
	"github.com/ipcfs/ipcfs/fs"
	"github.com/ipcfs/ipcfs/internal/daemonize"
	"github.com/ipcfs/ipcfs/internal/memlimit"
	"github.com/ipcfs/ipcfs/internal/sdnotify"
	"github.com/ipcfs/ipcfs/internal/size"
)

const mountUsage = `usage: ipcfs mount [flags] MOUNTPOINT
       ipcfs SOURCE MOUNTPOINT -o OPTIONS   (mount(8), fstab: each flag is an option, _ for -)`

// The two forms of the mount command line.
type mountForm int

const (
	foreground mountForm = iota // ipcfs mount [flags] MOUNTPOINT
	helperForm                  // ipcfs SOURCE MOUNTPOINT -o OPTIONS (mount(8), fstab): daemonizes
)

func mountCmd(args []string, form mountForm) int {
	flags := flag.NewFlagSet("ipcfs mount", flag.ContinueOnError)
	flags.Usage = func() {} // usageError prints it
	flags.SetOutput(io.Discard)
	allowOther := flags.Bool("allow-other", false, "let other users (and containers running as other uids) enter; the permission bits decide")
	queueBytes := &size.Value{N: 16 << 20}
	queueMsgs := &size.Value{N: 4096}
	shmMax := &size.Value{N: 1 << 30}
	flags.Var(queueBytes, "queue-bytes", "capacity of one channel's message queue, in bytes (K, M, G suffixes)")
	flags.Var(queueMsgs, "queue-msgs", "capacity of one channel's message queue, in messages")
	flags.Var(shmMax, "shm-max", "largest shared region of one channel (K, M, G suffixes)")
	// Limits of the mount and of each owner uid; the defaults derive from
	// the memory this process may use (fs.DefaultBudget).
	mem := machineMemory()
	def := fs.DefaultBudget(mem.Bytes)
	maxChannels := &size.Value{N: def.MaxChannels}
	userChannels := &size.Value{N: def.UserChannels}
	maxMemory := &size.Value{N: def.MaxMemory}
	userMemory := &size.Value{N: def.UserMemory}
	flags.Var(maxChannels, "max-channels", "channels in the mount; beyond, mkdir fails with ENOSPC (0: no limit)")
	flags.Var(userChannels, "user-channels", "channels of one owner uid; beyond, mkdir fails with EDQUOT (0: no limit)")
	flags.Var(maxMemory, "max-memory", "queued messages (at their real cost) and shm bytes in the mount; beyond, a message waits and shm growth fails with ENOSPC (0: no limit; default: half the cgroup memory limit or RAM)")
	flags.Var(userMemory, "user-memory", "the same, charged to each channel's owner uid; beyond, a message waits and shm growth fails with EDQUOT (0: no limit; default: an eighth of the cgroup memory limit or RAM)")
	passthrough := flags.Bool("passthrough", true, "map shm regions directly with FUSE passthrough where the kernel (6.9+) and privileges (CAP_SYS_ADMIN) allow; false: always through the page cache")
	strictDirty := flags.Bool("strict-dirty-limit", false, "keep the kernel's 1% dirty-page share for FUSE mounts (by default, as root, ipcfs lifts it so stores into large shm regions run at memory speed)")
	cpuProfile := flags.String("cpuprofile", "", "write a CPU profile of the daemon to `FILE` until it exits (debugging)")
	natsOpts := addNATSFlags(flags)
	logOpts := addLogFlags(flags)
	if form == helperForm {
		return background(flags, args, logOpts)
	}
	mountpoint, err := parseWithOperand(flags, args)
	if err != nil {
		return usageError(flags, err, mountUsage)
	}
	bg := daemonize.FromEnv() // started by background: the parent waits for bg.Ready
	log, warning, err := logOpts.logger(bg != nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipcfs mount:", err)
		bg.Fail(err.Error())
		return 2
	}
	if warning != "" {
		bg.Warn(warning)
	}

	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(fs.DefaultGoMemLimit(mem.Bytes))
	}
	log.Debug("memory available", "bytes", mem.Bytes, "source", mem.Source)

	var shared *joined
	if natsOpts.enabled() {
		if shared, err = natsOpts.join(log, mountpoint); err != nil {
			log.Error("mount failed", "err", err)
			bg.Fail(err.Error())
			return 1
		}
		defer shared.close()
	}
	srv, err := fs.Mount(fs.Config{
		Mountpoint: mountpoint,
		AllowOther: *allowOther,
		Limits:     channels.Limits{MaxBytes: queueBytes.N, MaxMsgs: queueMsgs.N},
		ShmMax:     shmMax.N,
		Budget: channels.BudgetLimits{
			MaxChannels:  maxChannels.N,
			UserChannels: userChannels.N,
			MaxMemory:    maxMemory.N,
			UserMemory:   userMemory.N,
		},
		StrictDirtyLimit: *strictDirty,
		Passthrough:      *passthrough,
		NATS:             shared.namespace(),
		Logger:           log,
	})
	if err != nil {
		log.Error("mount failed", "err", err)
		bg.Fail(err.Error())
		return 1
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			log.Error("cpu profile", "err", err)
			bg.Fail(err.Error())
			srv.Shutdown()
			return 1
		}
		defer stop()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	served := make(chan struct{})
	go func() {
		srv.Serve()
		close(served)
	}()
	log.Info("mounted", "mountpoint", srv.Mountpoint(), "shm", srv.ShmPath())
	notify(log, sdnotify.Ready)
	if bg != nil {
		bg.Ready()
		os.Chdir("/") // hold no directory busy
	}

	for {
		select {
		case <-usr1:
			logStats(log, srv)
		case sig := <-stop:
			log.Info("signal received, unmounting", "signal", sig.String())
			notify(log, sdnotify.Stopping)
			srv.Shutdown()
			log.Info("exiting")
			return 0
		case <-served:
			notify(log, sdnotify.Stopping)
			log.Info("unmounted from outside; exiting")
			return 0
		}
	}
}

// machineMemory is the memory this process may use: its cgroup's limit,
// or physical memory (1 GiB if neither can be read).
func machineMemory() memlimit.Limit {
	l, err := memlimit.Detect()
	if err != nil {
		return memlimit.Limit{Bytes: 1 << 30, Source: "fallback: " + err.Error()}
	}
	return l
}

// notify tells systemd (a unit of Type=notify) the daemon's state; it does
// nothing when not run by systemd.
func notify(log *slog.Logger, state string) {
	if sent, err := sdnotify.Notify(state); err != nil {
		log.Warn("telling systemd", "state", state, "err", err)
	} else if sent {
		log.Debug("told systemd", "state", state)
	}
}

// logStats logs one line about the daemon's size: SIGUSR1 asks for it.
func logStats(log *slog.Logger, srv *fs.Server) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	st := srv.Stats()
	log.Info("stats",
		"goroutines", runtime.NumGoroutine(),
		"heap_alloc", m.HeapAlloc,
		"heap_objects", m.HeapObjects,
		"channels", st.Channels,
		"removed_channels", st.RemovedChannels,
		"msg_nodes", st.MsgNodes,
		"handles", st.Handles,
		"parked_requests", st.Parked)
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// parseWithOperand parses flags that may come before or after the one
// operand, MOUNTPOINT.
func parseWithOperand(flags *flag.FlagSet, args []string) (string, error) {
	if err := flags.Parse(args); err != nil {
		return "", err
	}
	if flags.NArg() == 0 {
		return "", fmt.Errorf("missing MOUNTPOINT")
	}
	operand := flags.Arg(0)
	if err := flags.Parse(flags.Args()[1:]); err != nil {
		return "", err
	}
	if flags.NArg() > 0 {
		return "", fmt.Errorf("unexpected arguments after MOUNTPOINT: %q", flags.Args())
	}
	return operand, nil
}
