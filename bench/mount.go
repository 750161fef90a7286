package bench

import (
	"bytes"
	"context"
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
	cfg    Config
	prog   *progress
	tmp    string // holds mnt; removed at the end
	mnt    string // the mount
	shmDir string // a directory in /dev/shm; "" if there is none
	seq    int    // for unique channel names
	bdi    *Bdi   // the mount's writeback settings, if known

	daemon *daemon.Daemon
}

// open makes the temporary directories and mounts.
func (e *env) open(ctx context.Context) error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("bench: no /dev/fuse: %w", err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		return fmt.Errorf("bench: fusermount3 not found (install the fuse3 package): %w", err)
	}
	tmp, err := os.MkdirTemp("", "ipcfs-bench-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	e.tmp = tmp
	e.mnt = filepath.Join(tmp, "mnt")
	if e.cfg.Parts.Shm {
		if e.shmDir, err = os.MkdirTemp("/dev/shm", "ipcfs-bench-"); err != nil {
			return fmt.Errorf("bench: a directory in /dev/shm for the comparison: %w", err)
		}
	}
	e.prog.set("mounting")
	if err := e.startDaemon(ctx); err != nil {
		return err
	}
	e.bdi = readBdi(e.mnt)
	return nil
}

// startDaemon runs `ipcfs mount` on e.mnt and waits until it is mounted.
func (e *env) startDaemon(ctx context.Context) error {
	d, err := daemon.Start(ctx, daemon.Config{
		Exe:        e.cfg.Exe,
		Mountpoint: e.mnt,
		Args:       append([]string{"--log-format", "json", "--log-level", "info"}, e.cfg.DaemonArgs...),
		// Its own process group: Ctrl-C reaches only us, and we stop the
		// daemon after its clients. If we die, it gets SIGTERM and unmounts.
		SysProcAttr:  &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM},
		KeepLines:    50, // for error messages
		MountTimeout: 30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	e.daemon = d
	return nil
}

// close stops the daemon, makes sure nothing stays mounted, and removes
// the temporary directories.
func (e *env) close() error {
	var errs []error
	if e.daemon != nil {
		e.prog.set("unmounting")
		if err := e.daemon.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("bench: the daemon: %v:\n%s", err, e.daemon.Log()))
		}
	}
	if e.mnt != "" {
		if mounted, _ := isMounted(e.mnt); mounted {
			out, err := exec.Command("fusermount3", "-u", "-z", e.mnt).CombinedOutput()
			if err != nil {
				errs = append(errs, fmt.Errorf("bench: fusermount3 -u -z %s: %v: %s", e.mnt, err, bytes.TrimSpace(out)))
			}
		}
	}
	if e.tmp != "" {
		// Never recurse into a mount that is somehow still there.
		if mounted, _ := isMounted(e.mnt); mounted {
			errs = append(errs, fmt.Errorf("bench: %s is still mounted; left %s in place", e.mnt, e.tmp))
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
