package tests

import (
	"bufio"
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

// daemon is a running `ipcfs mount`.
type daemon struct {
	t   *testing.T
	mnt string
	cmd *exec.Cmd

	mu     sync.Mutex // guards log
	log    bytes.Buffer
	exit   chan error // receives Wait's result once
	exited bool       // signal has collected the exit
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

// startDaemonCmd starts the daemon binary bin, through the command wrap
// (which execs its arguments; none: directly).
func startDaemonCmd(t *testing.T, wrap []string, bin, mnt string, flags ...string) *daemon {
	t.Helper()
	args := append([]string{"mount", "--log-format", "json", "--log-level", "debug"}, flags...)
	d := &daemon{t: t, mnt: mnt, exit: make(chan error, 1)}
	argv := append(append(append([]string{}, wrap...), bin), append(args, mnt)...)
	d.cmd = exec.Command(argv[0], argv[1:]...)
	// If the test binary dies, its daemons stop (and unmount) too.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting ipcfs: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.log.WriteString(line + "\n")
			d.mu.Unlock()
			if strings.Contains(line, `"msg":"mounted"`) {
				once.Do(func() { close(ready) })
			}
		}
		d.exit <- d.cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-d.exit:
		d.exit <- err
		t.Fatalf("ipcfs exited before mounting: %v\n%s", err, d.logText())
	case <-time.After(hangTimeout):
		d.cmd.Process.Kill()
		t.Fatalf("ipcfs did not mount within %v\n%s", hangTimeout, d.logText())
	}
	return d
}

func (d *daemon) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

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
	d.cmd.Process.Signal(sig)
	d.exited = true
	select {
	case err := <-d.exit:
		return err
	case <-time.After(hangTimeout):
		d.cmd.Process.Kill()
		<-d.exit
		return fmt.Errorf("ipcfs did not exit within %v of %v", hangTimeout, sig)
	}
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
	for _, bad := range []string{"WARNING: DATA RACE", "BUG: panic", "panic:", "goroutine leak"} {
		if strings.Contains(log, bad) {
			t.Errorf("daemon log contains %q:\n%s", bad, log)
		}
	}
	// A dead mount would break the next test on this path.
	exec.Command("fusermount3", "-u", "-z", d.mnt).Run()
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
