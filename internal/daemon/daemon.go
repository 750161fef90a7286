// Package daemon runs `ipcfs mount` as a child process: it starts it, waits
// until it has mounted, keeps its log, and stops it. It is the one
// launcher of the integration tests and of `ipcfs bench`, which both serve
// the mount from a child process (a Go process must never touch a FUSE
// mount it serves).
package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config says how to start a daemon.
type Config struct {
	Exe string // the ipcfs binary
	// Wrap, if set, is a command run in the daemon's stead that execs its
	// arguments (Exe and the rest), such as prlimit or a shell joining a
	// cgroup; the daemon is then the same process.
	Wrap       []string
	Mountpoint string   // passed last
	Args       []string // after the subcommand: flags such as --log-format json
	// Subcommand is what runs the daemon, before Args: default "mount";
	// `ipcfs bench` also starts "bench floor", which logs the same line.
	Subcommand []string
	// SysProcAttr for the daemon's process, e.g. Pdeathsig so that it
	// stops (and unmounts) when its parent dies.
	SysProcAttr *syscall.SysProcAttr
	// KeepLines bounds how many of the last log lines Log returns; 0
	// keeps them all.
	KeepLines int
	// MountTimeout bounds the wait for the "mounted" log line (default
	// 60 s): a daemon that neither mounts nor exits is killed.
	MountTimeout time.Duration
}

// Daemon is a running `ipcfs mount`.
type Daemon struct {
	Cmd *exec.Cmd

	mu    sync.Mutex // guards lines
	lines []string
	keep  int

	exited chan struct{} // closed once Cmd.Wait has returned
	err    error         // Cmd.Wait's result, once exited is closed
}

// Start starts the daemon and returns once it has logged that it is
// mounted. If it exits first, does not mount within cfg.MountTimeout, or
// ctx ends, Start kills it (if still running) and returns an error that
// includes its log.
func Start(ctx context.Context, cfg Config) (*Daemon, error) {
	sub := cfg.Subcommand
	if len(sub) == 0 {
		sub = []string{"mount"}
	}
	argv := append(append(append([]string{}, cfg.Wrap...), cfg.Exe), sub...)
	argv = append(append(argv, cfg.Args...), cfg.Mountpoint)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = cfg.SysProcAttr
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting ipcfs: %w", err)
	}
	d := &Daemon{Cmd: cmd, keep: cfg.KeepLines, exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		mounted := false
		for sc.Scan() {
			line := sc.Text()
			d.add(line)
			if !mounted && isMounted(line) {
				mounted = true
				close(ready)
			}
		}
		// All of stderr has been read: Wait may close the pipe now.
		d.err = cmd.Wait()
		close(d.exited)
	}()
	timeout := cfg.MountTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-ready:
		return d, nil
	case <-d.exited:
		return nil, fmt.Errorf("ipcfs exited before mounting (%v):\n%s", d.err, d.Log())
	case <-timer.C:
		d.kill()
		return nil, fmt.Errorf("ipcfs did not mount within %v:\n%s", timeout, d.Log())
	case <-ctx.Done():
		d.kill()
		return nil, ctx.Err()
	}
}

// isMounted reports whether a log line, JSON or text, is the one the
// daemon logs once the mount is ready.
func isMounted(line string) bool {
	return strings.Contains(line, `"msg":"mounted"`) || strings.Contains(line, "msg=mounted")
}

func (d *Daemon) add(line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.keep > 0 && len(d.lines) == d.keep {
		d.lines = d.lines[1:]
	}
	d.lines = append(d.lines, line)
}

// Log returns the daemon's log so far (its last KeepLines lines), one
// line per log record.
func (d *Daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.lines) == 0 {
		return ""
	}
	return strings.Join(d.lines, "\n") + "\n"
}

// Exited returns a channel closed once the daemon has exited (and been
// waited for); then Err returns how.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// Err returns the daemon's exit error; valid once Exited is closed.
func (d *Daemon) Err() error { return d.err }

// Stop sends sig and waits up to timeout for the daemon to exit, then
// kills it. It returns the exit error, or an error saying it had to be
// killed. On a daemon that has exited already it sends nothing.
func (d *Daemon) Stop(sig syscall.Signal, timeout time.Duration) error {
	select {
	case <-d.exited:
		return d.err
	default:
	}
	d.Cmd.Process.Signal(sig)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-d.exited:
		return d.err
	case <-timer.C:
		d.kill()
		return errors.Join(d.err, fmt.Errorf("ipcfs did not exit within %v of %v; killed", timeout, sig))
	}
}

// kill SIGKILLs the daemon and waits for it (its process holds no
// request of its own, so it always dies).
func (d *Daemon) kill() {
	d.Cmd.Process.Kill()
	<-d.exited
}
