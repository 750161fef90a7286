package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ipcfs/ipcfs/internal/daemon"
	"github.com/ipcfs/ipcfs/internal/mountinfo"
)

// env is one run's temporary directories, daemon and client processes.
type env struct {
	cfg      Config
	prog     *progress
	tmp      string  // holds mnt and floorMnt; removed at the end
	mnt      string  // the ipcfs mount
	floorMnt string  // the floor server's mount
	shmDir   string  // a directory in /dev/shm; "" if there is none
	seq      int     // for unique channel names
	bdi      *Bdi    // the mount's writeback settings, if known
	cpus     cpuSets // the placements' affinity masks

	daemon *daemon.Daemon // ipcfs mount
	floor  *daemon.Daemon // ipcfs bench floor
	nats   *natsEnv       // with Config.NATS: daemons A and B joined to NATS
}

// daemons returns the daemons running.
func (e *env) daemons() []*daemon.Daemon {
	var ds []*daemon.Daemon
	all := []*daemon.Daemon{e.daemon, e.floor}
	if e.nats != nil {
		all = append(all, e.nats.a, e.nats.b)
	}
	for _, d := range all {
		if d != nil {
			ds = append(ds, d)
		}
	}
	return ds
}

// open makes the temporary directories and mounts.
func (e *env) open(ctx context.Context) error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("bench: no /dev/fuse: %w", err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		return fmt.Errorf("bench: fusermount3 not found (install the fuse3 package): %w", err)
	}
	cpus, err := newCPUSets(e.cfg.CPU)
	if err != nil {
		return err
	}
	e.cpus = cpus
	tmp, err := os.MkdirTemp("", "ipcfs-bench-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	e.tmp = tmp
	e.mnt = filepath.Join(tmp, "mnt")
	e.floorMnt = filepath.Join(tmp, "floor")
	if e.cfg.Parts.Shm {
		if e.shmDir, err = os.MkdirTemp("/dev/shm", "ipcfs-bench-"); err != nil {
			return fmt.Errorf("bench: a directory in /dev/shm for the comparison: %w", err)
		}
	}
	e.prog.set("mounting")
	if e.daemon, err = e.startDaemon(ctx, e.mnt, nil, append([]string{"--log-format", "json", "--log-level", "info"}, e.cfg.DaemonArgs...)); err != nil {
		return err
	}
	if err := os.Mkdir(e.floorMnt, 0o700); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if e.floor, err = e.startDaemon(ctx, e.floorMnt, []string{"bench", "floor"}, nil); err != nil {
		return fmt.Errorf("bench: the floor server: %w", err)
	}
	e.bdi = readBdi(e.mnt)
	if e.cfg.NATS {
		return e.openNATS(ctx)
	}
	return nil
}

// startDaemon runs `ipcfs SUB… ARGS… MNT` (a daemon that logs "mounted"
// once ready) and waits until it is mounted.
func (e *env) startDaemon(ctx context.Context, mnt string, sub, args []string) (*daemon.Daemon, error) {
	d, err := daemon.Start(ctx, daemon.Config{
		Exe:        e.cfg.Exe,
		Mountpoint: mnt,
		Subcommand: sub,
		Args:       args,
		// Its own process group: Ctrl-C reaches only us, and we stop the
		// daemon after its clients. If we die, it gets SIGTERM and unmounts.
		SysProcAttr:  &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM},
		KeepLines:    50, // for error messages
		MountTimeout: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return d, nil
}

// close stops the daemon, makes sure nothing stays mounted, and removes
// the temporary directories.
func (e *env) close() error {
	var errs []error
	e.nats.close()
	if ds := e.daemons(); len(ds) > 0 {
		e.prog.set("unmounting")
		for _, d := range ds {
			if err := d.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
				errs = append(errs, fmt.Errorf("bench: %s: %v:\n%s", strings.Join(d.Cmd.Args[1:], " "), err, d.Log()))
			}
		}
	}
	var left []string
	mnts := []string{e.mnt, e.floorMnt}
	if e.nats != nil {
		mnts = append(mnts, e.nats.mntA, e.nats.mntB)
	}
	for _, mnt := range mnts {
		if mnt == "" {
			continue
		}
		if mounted, _ := isMounted(mnt); mounted {
			out, err := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput()
			if err != nil {
				errs = append(errs, fmt.Errorf("bench: fusermount3 -u -z %s: %v: %s", mnt, err, bytes.TrimSpace(out)))
			}
		}
		if mounted, _ := isMounted(mnt); mounted {
			left = append(left, mnt)
		}
	}
	if e.tmp != "" {
		// Never recurse into a mount that is somehow still there.
		if len(left) > 0 {
			errs = append(errs, fmt.Errorf("bench: %s still mounted; left %s in place", strings.Join(left, " and "), e.tmp))
		} else if err := os.RemoveAll(e.tmp); err != nil {
			errs = append(errs, fmt.Errorf("bench: %w", err))
		}
	}
	if e.shmDir != "" {
		if err := os.RemoveAll(e.shmDir); err != nil {
			errs = append(errs, fmt.Errorf("bench: %w", err))
		}
	}
	return errors.Join(errs...)
}

// isMounted reports whether path is a mount point in this namespace.
func isMounted(path string) (bool, error) {
	_, ok, err := mountinfo.Find(path)
	return ok, err
}

// mountDevice returns the device number ("major:minor") of the mount on
// path, or "" if nothing is mounted there.
func mountDevice(path string) (string, error) {
	m, _, err := mountinfo.Find(path)
	return m.Device, err
}

// readBdi reads the writeback settings of the mount's backing device
// info: they decide how shm's dirty pages are written back.
func readBdi(mnt string) *Bdi {
	dev, err := mountDevice(mnt)
	if err != nil || dev == "" {
		return nil
	}
	dir := filepath.Join("/sys/class/bdi", dev)
	num := func(name string) int64 {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return -1
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	return &Bdi{
		Device:      dev,
		MaxRatio:    num("max_ratio"),
		StrictLimit: num("strict_limit"),
		MaxBytes:    num("max_bytes"),
		ReadAheadKB: num("read_ahead_kb"),
	}
}

// shmPath returns how the daemon whose JSON log is log serves shm
// mappings, from its "mounted" line, or "" if it never said.
func shmPath(log string) string {
	for _, line := range strings.Split(log, "\n") {
		var rec struct{ Msg, Shm string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "mounted" {
			return rec.Shm
		}
	}
	return ""
}
