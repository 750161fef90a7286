package bench

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcfs/ipcfs/internal/mountinfo"
)

// floorEnv makes the test binary the floor server (see TestMain): the
// tests talk to a mount served by another process, never by themselves.
const floorEnv = "IPCFS_BENCH_TEST_FLOOR"

func TestMain(m *testing.M) {
	if mnt := os.Getenv(floorEnv); mnt != "" {
		os.Exit(FloorMain([]string{mnt}))
	}
	os.Exit(m.Run())
}

// hang turns a hang into a failure; it is not a performance bound.
const hang = 30 * time.Second

// startFloor serves the floor on a new mount from a child process and
// returns the mount point; the server is stopped and the mount checked
// gone at the end of the test.
func startFloor(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: cannot mount FUSE here")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("no fusermount3 (package fuse3): cannot mount FUSE here")
	}
	mnt := filepath.Join(t.TempDir(), "floor")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), floorEnv+"="+mnt)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the floor server exited with %v", err)
			}
		case <-time.After(hang):
			cmd.Process.Kill()
			t.Errorf("the floor server did not exit within %v of SIGTERM", hang)
			<-exited
		}
		if _, ok, _ := mountinfo.Find(mnt); ok {
			t.Errorf("%s is still mounted", mnt)
			exec.Command("fusermount3", "-u", "-z", mnt).Run()
		}
	})
	timeout := time.After(hang)
	var log []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				go func() { exited <- cmd.Wait() }()
				t.Fatalf("the floor server ended before mounting:\n%s", strings.Join(log, "\n"))
			}
			log = append(log, l)
			if strings.Contains(l, "msg=mounted") {
				go func() {
					for range lines {
					}
					exited <- cmd.Wait()
				}()
				return mnt
			}
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("the floor server did not mount within %v:\n%s", hang, strings.Join(log, "\n"))
		}
	}
}

func mustOpen(t *testing.T, path string, mode int) int {
	t.Helper()
	fd, err := unix.Open(path, mode|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// within runs f and fails the test if it does not return within hang.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(hang):
		t.Fatalf("%s: hung for %v", what, hang)
	}
}

// The tests block in unix.Read and unix.Write, not in the clients' raw
// calls: a raw call that blocks keeps its P, and with GOMAXPROCS=1 the
// goroutine that would unblock it could never run.

// readRetrying and writeRetrying are the blocking calls, retried on
// EINTR: the Go runtime's own signals (SIGURG, to preempt a goroutine)
// interrupt the FUSE request a test blocks in, and the floor answers an
// interrupted parked request with EINTR, having taken nothing. A CI run
// saw TestFloorQueueFull's waiting write come back that way.
func readRetrying(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func writeRetrying(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Write(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// TestFloorServer checks the floor's exchange from this process (which
// does not serve it): a parked read answered by a write, queued messages
// in order, hangup, the trivial request, a killed reader.
func TestFloorServer(t *testing.T) {
	mnt := startFloor(t)
	ch := filepath.Join(mnt, "c1")
	if err := os.Mkdir(ch, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(ch, 0o700); !errors.Is(err, unix.EEXIST) {
		t.Errorf("mkdir of an existing channel: %v, want EEXIST", err)
	}
	for _, name := range []string{"msg", "ctl", "status"} {
		if fi, err := os.Stat(filepath.Join(ch, name)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("stat %s: %v, %v", name, fi, err)
		}
	}

	// The trivial request: a 1-byte pread of status.
	st := mustOpen(t, filepath.Join(ch, "status"), unix.O_RDONLY)
	b := make([]byte, 1)
	if n, err := rawPread(st, b, 0); n != 1 || err != nil || b[0] != '0' {
		t.Errorf("pread status = %d, %v, %q", n, err, b)
	}

	// A read parks until a write answers it.
	w := mustOpen(t, filepath.Join(ch, "msg"), unix.O_WRONLY)
	r := mustOpen(t, filepath.Join(ch, "msg"), unix.O_RDONLY)
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		n, err := readRetrying(r, buf) // not raw: it blocks, and the test may have one P
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(buf[:n])
	}()
	time.Sleep(50 * time.Millisecond) // let it park; the test holds either way
	if n, err := unix.Write(w, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	select {
	case s := <-got:
		if s != "hello" {
			t.Errorf("the parked read got %q, want hello", s)
		}
	case <-time.After(hang):
		t.Fatal("the parked read was not answered")
	}

	// Queued messages come out one a read, in order; after hangup, end
	// of file once drained, and writes fail with EPIPE.
	for _, m := range []string{"one", "two", "three"} {
		if _, err := unix.Write(w, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	ctl := mustOpen(t, filepath.Join(ch, "ctl"), unix.O_WRONLY)
	if _, err := unix.Write(ctl, []byte("hangup\n")); err != nil {
		t.Fatal(err)
	}
	within(t, "reading the queue", func() {
		var msgs []string
		buf := make([]byte, 64)
		for {
			n, err := unix.Read(r, buf)
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			if n == 0 {
				break
			}
			msgs = append(msgs, string(buf[:n]))
		}
		if strings.Join(msgs, ",") != "one,two,three" {
			t.Errorf("read %q, want one, two, three", msgs)
		}
	})
	if _, err := unix.Write(w, []byte("late")); err != unix.EPIPE {
		t.Errorf("write after hangup: %v, want EPIPE", err)
	}

	// A reader killed while parked dies (the server answers the
	// INTERRUPT): it does not wait for a message forever.
	ch2 := filepath.Join(mnt, "c2")
	if err := os.Mkdir(ch2, 0o700); err != nil {
		t.Fatal(err)
	}
	cat := exec.Command("cat", filepath.Join(ch2, "msg"))
	var out bytes.Buffer
	cat.Stdout = &out
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	cat.Process.Kill()
	within(t, "waiting for the killed reader", func() { cat.Wait() })
	if out.Len() != 0 {
		t.Errorf("the killed reader printed %q", out.String())
	}

	for _, c := range []string{ch, ch2} {
		if err := os.Remove(c); err != nil {
			t.Errorf("rmdir: %v", err)
		}
	}
	if _, err := os.Stat(ch); !errors.Is(err, unix.ENOENT) {
		t.Errorf("stat after rmdir: %v, want ENOENT", err)
	}
}

// TestFloorQueueFull checks that a writer waits while the floor's queue
// is full and is answered when a read makes room.
func TestFloorQueueFull(t *testing.T) {
	mnt := startFloor(t)
	ch := filepath.Join(mnt, "c")
	if err := os.Mkdir(ch, 0o700); err != nil {
		t.Fatal(err)
	}
	w := mustOpen(t, filepath.Join(ch, "msg"), unix.O_WRONLY)
	r := mustOpen(t, filepath.Join(ch, "msg"), unix.O_RDONLY)
	within(t, "filling the queue", func() {
		for range floorQueueMsgs {
			if _, err := unix.Write(w, []byte("x")); err != nil {
				t.Errorf("write: %v", err)
				return
			}
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := writeRetrying(w, []byte("last"))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a write to a full queue returned at once: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	buf := make([]byte, 8)
	if n, err := unix.Read(r, buf); n != 1 || err != nil {
		t.Fatalf("read = %d, %v", n, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the waiting write: %v", err)
		}
	case <-time.After(hang):
		t.Fatal("the waiting write was not answered after a read made room")
	}
	within(t, "draining", func() {
		for i := range floorQueueMsgs {
			n, err := unix.Read(r, buf)
			if err != nil {
				t.Errorf("read %d: %v", i, err)
				return
			}
			if i == floorQueueMsgs-1 && string(buf[:n]) != "last" {
				t.Errorf("last message %q, want last", buf[:n])
			}
		}
	})
	if err := os.Remove(ch); err != nil {
		t.Error(err)
	}
}

func TestCPUSets(t *testing.T) {
	s, err := newCPUSets(-1)
	if err != nil {
		t.Fatal(err)
	}
	if s.one.Count() != 1 || !s.one.IsSet(s.cpu) || !s.all.IsSet(s.cpu) || s.cpu != firstCPU(&s.all) {
		t.Errorf("cpu sets: %+v", s)
	}
	if _, err := newCPUSets(len(s.all) * 64); err == nil {
		t.Errorf("a CPU beyond any set was accepted")
	}
	// Pinning this process to what it has changes nothing and touches
	// every thread.
	if err := pinThreads(os.Getpid(), &s.all); err != nil {
		t.Fatal(err)
	}
	var now CPUSet
	if err := unix.SchedGetaffinity(0, &now); err != nil || now != s.all {
		t.Errorf("affinity after pinning to all: %v, %v", now, err)
	}
}
