package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

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

	daemon    *exec.Cmd
	daemonLog *logTail
	exited    chan struct{} // closed when the daemon has exited
	exitErr   error         // valid once exited is closed
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
	args := append([]string{"mount", "--log-format", "json", "--log-level", "info"}, e.cfg.DaemonArgs...)
	cmd := exec.Command(e.cfg.Exe, append(args, e.mnt)...)
	// Its own process group: Ctrl-C reaches only us, and we stop the
	// daemon after its clients. If we die, it gets SIGTERM and unmounts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bench: starting the daemon: %w", err)
	}
	e.daemon = cmd
	e.daemonLog = &logTail{}
	e.exited = make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		mounted := false
		for sc.Scan() {
			line := sc.Text()
			e.daemonLog.add(line)
			if !mounted && strings.Contains(line, `"msg":"mounted"`) {
				mounted = true
				close(ready)
			}
		}
		e.exitErr = cmd.Wait()
		close(e.exited)
	}()
	select {
	case <-ready:
		return nil
	case <-e.exited:
		return fmt.Errorf("bench: the daemon exited before mounting (%v):\n%s", e.exitErr, e.daemonLog)
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return fmt.Errorf("bench: the daemon did not mount within 30s:\n%s", e.daemonLog)
	}
}

// close stops the daemon, makes sure nothing stays mounted, and removes
// the temporary directories.
func (e *env) close() error {
	var errs []error
	if e.daemon != nil {
		e.prog.set("unmounting")
		e.daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
			if e.exitErr != nil {
				errs = append(errs, fmt.Errorf("bench: the daemon exited with %v:\n%s", e.exitErr, e.daemonLog))
			}
		case <-time.After(15 * time.Second):
			e.daemon.Process.Kill()
			<-e.exited
			errs = append(errs, fmt.Errorf("bench: the daemon did not exit within 15s of SIGTERM; killed:\n%s", e.daemonLog))
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

// logTail keeps the last lines of the daemon's log, for error messages.
type logTail struct {
	mu    sync.Mutex // guards lines
	lines []string
}

func (l *logTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 50 {
		l.lines = l.lines[1:]
	}
	l.lines = append(l.lines, line)
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
