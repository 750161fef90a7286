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
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// channel makes a new channel for transport t (Msg or Floor) and returns
// its path.
func (e *env) channel(t string) (string, error) {
	mnt := e.mnt
	if t == Floor {
		mnt = e.floorMnt
	}
	e.seq++
	p := filepath.Join(mnt, fmt.Sprintf("c%d", e.seq))
	if err := os.Mkdir(p, 0o700); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	return p, nil
}

// removeChannels removes channels made by channel.
func removeChannels(paths ...string) error {
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			errs = append(errs, fmt.Errorf("bench: %w", err))
		}
	}
	return errors.Join(errs...)
}

// proc is a running client process.
type proc struct {
	role        string
	cmd         *exec.Cmd
	stdout, err bytes.Buffer
}

// group runs the client processes of one measurement: if one fails, the
// others are killed.
type group struct {
	parent  context.Context
	ctx     context.Context
	cancel  context.CancelFunc
	exe     string
	clients []*proc
	files   []*os.File // the parent's copies of inherited descriptors
}

func (e *env) group(ctx context.Context, timeout time.Duration) *group {
	gctx, cancel := context.WithTimeout(ctx, timeout)
	return &group{parent: ctx, ctx: gctx, cancel: cancel, exe: e.cfg.Exe}
}

// start runs `ipcfs bench client ROLE ARGS…` with extra as fds 3, 4, ….
func (g *group) start(role string, extra []*os.File, args ...string) error {
	c := &proc{role: role}
	c.cmd = exec.CommandContext(g.ctx, g.exe, append([]string{"bench", "client", role}, args...)...)
	c.cmd.ExtraFiles = extra
	c.cmd.Env = append(os.Environ(), clientEnv)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.err
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("bench: starting a %s client: %w", role, err)
	}
	g.clients = append(g.clients, c)
	return nil
}

// wait waits for every client and returns their results in start order.
func (g *group) wait() ([]clientResult, error) {
	defer g.cancel()
	g.closeFiles()
	results := make([]clientResult, len(g.clients))
	errs := make([]error, len(g.clients))
	var wg sync.WaitGroup
	for i, c := range g.clients {
		wg.Go(func() {
			err := c.cmd.Wait()
			if err == nil {
				err = json.Unmarshal(bytes.TrimSpace(c.stdout.Bytes()), &results[i])
			}
			if err != nil {
				if g.ctx.Err() == nil {
					g.cancel() // the others may wait for this one forever
				}
				errs[i] = fmt.Errorf("%s client: %v: %s", c.role, err, bytes.TrimSpace(c.err.Bytes()))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if perr := g.parent.Err(); perr != nil {
			return nil, perr // canceled from outside (Ctrl-C): the clients were killed
		}
		if errors.Is(g.ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("bench: timed out (a hang?): %w", err)
		}
		return nil, err
	}
	return results, nil
}

func (g *group) closeFiles() {
	for _, f := range g.files {
		f.Close()
	}
	g.files = nil
}

// pipe returns a pipe's read and write ends, blocking.
func (g *group) pipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("bench: pipe: %w", err)
	}
	r, w = os.NewFile(uintptr(p[0]), "pipe-r"), os.NewFile(uintptr(p[1]), "pipe-w")
	g.files = append(g.files, r, w)
	return r, w, nil
}

// socketpair returns two connected SOCK_SEQPACKET Unix sockets, blocking.
func (g *group) socketpair() (a, b *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: socketpair: %w", err)
	}
	a, b = os.NewFile(uintptr(fds[0]), "sock-a"), os.NewFile(uintptr(fds[1]), "sock-b")
	g.files = append(g.files, a, b)
	return a, b, nil
}
