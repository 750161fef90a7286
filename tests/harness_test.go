package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	launcher "github.com/ipcfs/ipcfs/internal/daemon"
)

// bins holds the programs TestMain builds: the daemon and the clients.
var bins struct {
	dir      string
	ipcfs    string // the daemon
	goclient string // Go client (tests/goclient)
	msgtool  string // C client (tests/clients/msgtool.c), "" if no C compiler
	skip     string // why mounted tests cannot run here, or ""
}

// hangTimeout turns a hang into a failure. It is not a performance bound.
const hangTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests: setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "ipcfs-tests-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	bins.dir = dir
	// Race-built clients and daemons otherwise sleep a second at exit.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	if _, err := os.Stat("/dev/fuse"); err != nil {
		bins.skip = "no /dev/fuse on this machine: mounted tests need FUSE (CI has it)"
	} else if _, err := exec.LookPath("fusermount3"); err != nil {
		bins.skip = "no fusermount3: install the fuse3 package (scripts/setup.sh does)"
	}
	if bins.ipcfs, err = buildGo("github.com/ipcfs/ipcfs/cmd/ipcfs"); err != nil {
		return 0, err
	}
	if bins.goclient, err = buildGo("github.com/ipcfs/ipcfs/tests/goclient"); err != nil {
		return 0, err
	}
	if _, err := exec.LookPath("cc"); err == nil {
		if bins.msgtool, err = buildC("clients/msgtool.c"); err != nil {
			return 0, err
		}
	}
	return m.Run(), nil
}

var built sync.Map // source → *builtBinary

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// buildGo builds a Go main package once per test run (with -race when the
// tests have it) and returns the binary's path.
func buildGo(pkg string) (string, error) {
	return buildOnce(pkg, func(out string) *exec.Cmd {
		args := []string{"build", "-o", out}
		if raceEnabled {
			args = append(args, "-race")
		}
		return exec.Command("go", append(args, pkg)...)
	})
}

// buildC compiles a one-file C program (a path relative to tests/) once per
// test run and returns the binary's path.
func buildC(src string) (string, error) {
	return buildOnce(src, func(out string) *exec.Cmd {
		return exec.Command("cc", "-O2", "-Wall", "-Werror", "-o", out, src)
	})
}

func buildOnce(src string, command func(out string) *exec.Cmd) (string, error) {
	v, _ := built.LoadOrStore(src, &builtBinary{})
	b := v.(*builtBinary)
	b.once.Do(func() {
		out := filepath.Join(bins.dir, strings.NewReplacer("/", "_", ".", "_").Replace(src))
		cmd := command(out)
		if o, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s: %v\n%s", src, err, o)
			return
		}
		b.path = out
	})
	return b.path, b.err
}

// goBinary returns a Go client program built from pkg, failing the test if
// it does not build.
func goBinary(t *testing.T, pkg string) string {
	t.Helper()
	p, err := buildGo(pkg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cBinary returns a C client program compiled from src (relative to
// tests/), skipping the test if there is no C compiler.
func cBinary(t *testing.T, src string) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("no C compiler (cc)")
	}
	p, err := buildC(src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// daemon is a running `ipcfs mount` (started by internal/daemon, the
// launcher ipcfs bench uses too).
type daemon struct {
	t   *testing.T
	mnt string
	cmd *exec.Cmd
	ld  *launcher.Daemon

	exited bool // signal has collected the exit
}

// mount starts a daemon on a fresh mountpoint with the given extra flags
// and stops it when the test ends, failing the test if it did not exit 0
// or logged a panic or a data race.
func mount(t *testing.T, flags ...string) *daemon {
	t.Helper()
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	d := startDaemon(t, filepath.Join(t.TempDir(), "ipc"), flags...)
	t.Cleanup(func() { d.stop() })
	return d
}

func startDaemon(t *testing.T, mnt string, flags ...string) *daemon {
	t.Helper()
	return startDaemonCmd(t, nil, bins.ipcfs, mnt, flags...)
}

// startDaemonCmd starts the daemon binary bin through the command wrap
// (which execs its arguments; nil: directly), e.g. prlimit, or a shell
// that joins a cgroup.
func startDaemonCmd(t *testing.T, wrap []string, bin, mnt string, flags ...string) *daemon {
	t.Helper()
	ld, err := launcher.Start(context.Background(), launcher.Config{
		Exe:        bin,
		Wrap:       wrap,
		Mountpoint: mnt,
		Args:       append([]string{"--log-format", "json", "--log-level", "debug"}, flags...),
		// If the test binary dies, its daemons stop (and unmount) too.
		SysProcAttr:  &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM},
		MountTimeout: hangTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &daemon{t: t, mnt: mnt, cmd: ld.Cmd, ld: ld}
}

func (d *daemon) logText() string { return d.ld.Log() }

// logLines returns the daemon's JSON log records so far.
func (d *daemon) logLines() []map[string]any {
	var recs []map[string]any
	for _, line := range strings.Split(d.logText(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			recs = append(recs, rec)
		}
	}
	return recs
}

// waitLog waits until the daemon has logged a record for which match is
// true, and returns it.
func (d *daemon) waitLog(match func(map[string]any) bool) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for time.Now().Before(deadline) {
		for _, rec := range d.logLines() {
			if match(rec) {
				return rec
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("the daemon never logged the expected line; log:\n%s", d.logText())
	return nil
}

// signal sends sig and waits for the daemon to exit, returning its error.
// Once the daemon has exited it returns nil and sends nothing.
func (d *daemon) signal(sig syscall.Signal) error {
	if d.exited {
		return nil
	}
	d.exited = true
	return d.ld.Stop(sig, hangTimeout)
}

// stop ends the daemon with SIGTERM (unless a test ended it already) and
// checks how it went.
func (d *daemon) stop() {
	t := d.t
	if !d.exited {
		if err := d.signal(syscall.SIGTERM); err != nil {
			t.Errorf("ipcfs did not exit cleanly on SIGTERM: %v\n%s", err, d.logText())
		}
	}
	log := d.logText()
	for _, bad := range []string{"WARNING: DATA RACE", "BUG: panic", "panic:"} {
		if strings.Contains(log, bad) {
			t.Errorf("daemon log contains %q:\n%s", bad, log)
		}
	}
	// A dead mount would break the next test on this path.
	runErr("fusermount3", "-u", "-z", d.mnt)
}

// runMounted runs each test of a conformance map as a parallel subtest
// with a daemon of its own, mounted with flags.
func runMounted(t *testing.T, tests map[string]func(t *testing.T, d *daemon), flags ...string) {
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, mount(t, flags...))
		})
	}
}

// lockedBuffer is a bytes.Buffer safe to write from a command's output
// copier while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// channel makes a new channel on the daemon's mount and returns its path.
func (d *daemon) channel(name string) string {
	d.t.Helper()
	p := filepath.Join(d.mnt, name)
	if err := os.Mkdir(p, 0o777); err != nil {
		d.t.Fatalf("mkdir %s: %v", p, err)
	}
	return p
}

// run runs a client program with a hang timeout and returns its stdout;
// it fails the test if the program fails, showing its stderr.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, errOut, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, out, errOut)
	}
	return out
}

// runErr runs a client program with a hang timeout.
func runErr(name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second // a grandchild holding the pipes must not hang Wait
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, fmt.Errorf("timed out after %v (a hang)", hangTimeout))
	}
	return o.String(), e.String(), err
}

// sh runs a shell script with MNT and CH in its environment.
func sh(t *testing.T, env map[string]string, script string) string {
	t.Helper()
	args := []string{"-c", script}
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("sh -c %q: %v\nstdout:\n%s\nstderr:\n%s", script, err, o.String(), e.String())
	}
	if e.Len() > 0 {
		t.Errorf("sh -c %q wrote to stderr:\n%s", script, e.String())
	}
	return o.String()
}

// readStatus returns a channel's status file as a map.
func readStatus(t *testing.T, ch string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ch, "status"))
	if err != nil {
		t.Fatalf("reading status: %v", err)
	}
	st := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, " ")
		st[k] = v
	}
	return st
}

// waitTimeout waits for a started command, killing it after hangTimeout:
// every wait on a child in these tests is bounded, so a hang fails the
// test that hung, with its name, instead of the whole run at -timeout.
func waitTimeout(cmd *exec.Cmd) error { return waitWithin(cmd, hangTimeout) }

// waitWithin is waitTimeout with a bound of d: for a child whose work may
// outlast a hang's bound (a cluster failing over).
func waitWithin(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		// A client stuck in a request the daemon never answers cannot die
		// until the daemon does: do not wait for it forever.
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return fmt.Errorf("%s did not finish within %v: %w", cmd.Path, d, errHang)
	}
}

// errHang is the error of waitTimeout for a child that did not finish.
var errHang = errors.New("a hang")

// waitPollSleep waits until a thread of process pid sleeps in poll(2),
// select(2) or epoll_wait(2) — the daemon has answered its POLL and holds
// the wakeup — so that what the test does next must wake it rather than
// find it ready. name names the process in the failure.
func waitPollSleep(t *testing.T, pid int, name string) {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	var seen []string
	for time.Now().Before(deadline) {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		seen = seen[:0]
		for _, task := range tasks {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/wchan", pid, task.Name()))
			// poll and select sleep in poll_schedule_timeout, epoll_wait in
			// do_epoll_wait or ep_poll (older kernels: do_sys_poll, do_select).
			w := string(b)
			if strings.Contains(w, "poll_schedule_timeout") || strings.Contains(w, "epoll_wait") || strings.HasPrefix(w, "ep_poll") || w == "do_sys_poll" || w == "do_select" {
				return
			}
			seen = append(seen, w)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never slept in poll, select or epoll_wait (its threads' wchan: %q)", name, seen)
}

// shmPath is how the daemon serves shm mappings, from its "mounted" log
// line: "passthrough" or "page cache".
func (d *daemon) shmPath() string {
	rec := d.waitLog(func(r map[string]any) bool { return r["msg"] == "mounted" })
	path, _ := rec["shm"].(string)
	return path
}
