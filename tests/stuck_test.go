package tests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stuckTests is the conformance map of issue 9: no process is ever stuck
// on a channel (spec msg rules 5 and 6 in full), open racing rmdir, and
// messages up to 1 MiB. Each test gets its own daemon.
var stuckTests = map[string]func(t *testing.T, d *daemon){
	"the issue's shell scenario":                         testStuckIssueScenario,
	"writers behind parked writers: signals and EAGAIN":  testStuckWriters,
	"every other operation while a writer is parked":     testStuckOps,
	"a blocked read or write survives stops and freezes": testStuckSurvives,
	"signals still interrupt blocked reads and writes":   testStuckInterrupts,
	"open racing rmdir: ENOENT, never EIO":               testStuckOpenRmdir,
	"1 MiB: one write is one message, read whole":        testStuckAtomicWrite,
	"1 MiB: a writev over more than 32 pages":            testStuckWritev,
	"1 MiB: larger writes arrive as consecutive pieces":  testStuckPieces,
	"4000 blocked readers: the daemon's memory":          testStuckManyReaders,
	"ipcfs mount on a live ipcfs mount is refused":       testStuckRefuseLive,
}

func TestStuck(t *testing.T) { runMounted(t, stuckTests) }

// TestStuckBindRecipe is the README's container recipe, verbatim: the
// mountpoint bound onto itself and made shared, then `ipcfs mount` on it.
func TestStuckBindRecipe(t *testing.T) {
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot make bind mounts")
	}
	dir := filepath.Join(t.TempDir(), "ipc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The directory on the disk underneath, to see what lands there.
	under, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer under.Close()
	// The README says: mount --bind /ipc /ipc && mount --make-shared /ipc
	recipe := strings.ReplaceAll(`mount --bind /ipc /ipc && mount --make-shared /ipc`, "/ipc", dir)
	if out, err := exec.Command("sh", "-c", recipe).CombinedOutput(); err != nil {
		exec.Command("umount", "-l", dir).Run()
		t.Skipf("%s: %v: %s (cannot make a shared bind mount here)", recipe, err, out)
	}
	t.Cleanup(func() { // after the daemon's stop (cleanups run last first)
		if !isMounted(t, dir) {
			return // the harness's fusermount3 -u -z took it
		}
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	d := startDaemon(t, dir)
	t.Cleanup(d.stop)
	if n := mountCount(t, dir); n != 2 {
		t.Errorf("%d mounts on %s, want 2 (the bind mount and ipcfs on it)", n, dir)
	}
	if fs := topFSType(t, dir); !strings.HasPrefix(fs, "fuse") {
		t.Errorf("the top mount on %s is %q, want ipcfs's FUSE mount", dir, fs)
	}
	ch := d.channel("landed")
	out := sh(t, map[string]string{"CH": ch}, `echo through > "$CH/msg"; head -n1 "$CH/msg"`)
	if out != "through\n" {
		t.Errorf("a message through the channel made on the recipe's mount: %q", out)
	}
	names, err := under.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("the disk directory under the mount holds %q: the mkdir did not land in ipcfs", names)
	}
	// A second ipcfs on it is refused: ipcfs is live there now.
	_, errOut, err := runErr(bins.ipcfs, "mount", dir)
	if err == nil || !strings.Contains(errOut, dir) || !strings.Contains(errOut, "fuse") {
		t.Errorf("a second ipcfs mount on the recipe's mount: %v %q, want a refusal naming %s and the FUSE mount", err, errOut, dir)
	}
	// The daemon takes away its own mount only.
	if err := d.signal(syscall.SIGTERM); err != nil {
		t.Errorf("daemon after SIGTERM: %v", err)
	}
	if n, fs := mountCount(t, dir), topFSType(t, dir); n != 1 || strings.HasPrefix(fs, "fuse") {
		t.Errorf("after the daemon exited: %d mounts on %s, the top one %q; want the bind mount alone", n, dir, fs)
	}
}

// topFSType returns the filesystem type of the last (topmost) mount on
// path in this process's namespace, or "".
func topFSType(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	esc := strings.NewReplacer(" ", `\040`, "\t", `\011`, "\n", `\012`, `\`, `\134`).Replace(path)
	fs := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == esc {
			if i := slices.Index(f, "-"); i > 0 && i+1 < len(f) {
				fs = f[i+1]
			}
		}
	}
	return fs
}

func testStuckRefuseLive(t *testing.T, d *daemon) {
	fs := topFSType(t, d.mnt)
	_, errOut, err := runErr(bins.ipcfs, "mount", d.mnt)
	exec.Command("fusermount3", "-u", "-z", d.mnt).Run() // only if it stacked a second mount
	if err == nil {
		t.Fatalf("ipcfs mount on a live ipcfs mount succeeded")
	}
	if !strings.Contains(errOut, d.mnt) || fs == "" || !strings.Contains(errOut, fs) {
		t.Errorf("refusal %q: want it to name %s and what is there (%s)", strings.TrimSpace(errOut), d.mnt, fs)
	}
	t.Logf("refused: %s", strings.TrimSpace(errOut))
}

// ---- watched client processes ----

// watched is a client process whose output lines, exit and scheduler
// state the test follows. The state of its threads (and of its
// children's) is sampled until it exits; while checkD is on, every 'D'
// (uninterruptible sleep) seen is recorded with where it slept.
type watched struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	lines  chan string
	errf   *os.File      // stderr, a file: Wait never waits for a copier
	exited chan struct{} // closed once Wait has returned
	err    error         // Wait's result, set before exited is closed

	mu     sync.Mutex // guards checkD and inD
	checkD bool       // a 'D' sample is recorded
	inD    []string   // where 'D' samples slept (a few)
}

// startWatched starts argv; with checkD every sample in state D counts
// against it (see neverD) until it is signalled.
func startWatched(t *testing.T, name string, checkD bool, argv ...string) *watched {
	t.Helper()
	w := &watched{t: t, name: name, lines: make(chan string, 64), exited: make(chan struct{}), checkD: checkD}
	var err error
	if w.errf, err = os.CreateTemp(t.TempDir(), "stderr"); err != nil {
		t.Fatal(err)
	}
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.cmd = exec.Command(argv[0], argv[1:]...)
	w.cmd.Env = append(os.Environ(), clientGORACE)
	w.cmd.Stdout, w.cmd.Stderr = wr, w.errf
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("starting %s %q: %v", name, argv, err)
	}
	wr.Close()
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 8<<20)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
		r.Close()
	}()
	go func() {
		w.err = w.cmd.Wait()
		close(w.exited)
	}()
	go w.sample()
	t.Cleanup(w.end)
	return w
}

func (w *watched) sample() {
	pid := w.cmd.Process.Pid
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.exited:
			return
		case <-tick.C:
		}
		for _, ts := range taskStates(pid) {
			if ts.state != 'D' {
				continue
			}
			where := ts.where()
			if benignD(where) {
				continue
			}
			w.mu.Lock()
			if w.checkD && len(w.inD) < 4 {
				w.inD = append(w.inD, where)
			}
			w.mu.Unlock()
		}
	}
}

// end kills the process if it still runs. One stuck in a request the
// daemon never answers dies only when the daemon stops, after this.
func (w *watched) end() {
	select {
	case <-w.exited:
		return
	default:
	}
	w.cmd.Process.Kill()
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		if !w.t.Failed() {
			w.t.Errorf("%s could not be killed within 5 s: %s", w.name, w.where())
		}
	}
}

// stopCheckingD ends the 'D' checks: after a signal a thread may wait for
// the daemon's answer to its INTERRUPT in the kernel's killable sleep.
func (w *watched) stopCheckingD() {
	w.mu.Lock()
	w.checkD = false
	w.mu.Unlock()
}

// seenD returns where 'D' samples slept, if any were seen while checking.
func (w *watched) seenD() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.inD)
}

// neverD fails the test if the process was seen in state D while checked.
func (w *watched) neverD() {
	w.t.Helper()
	if d := w.seenD(); len(d) > 0 {
		w.t.Errorf("%s slept uninterruptibly (state D): %s", w.name, strings.Join(d, "; "))
	}
}

func (w *watched) signal(sig syscall.Signal) {
	w.t.Helper()
	w.stopCheckingD()
	if err := w.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		w.t.Fatalf("%s: sending %v: %v", w.name, sig, err)
	}
}

func (w *watched) running() bool {
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

// wait waits for the process to exit and returns Wait's error; a hang
// fails the test, saying where the process sleeps.
func (w *watched) wait() error {
	w.t.Helper()
	select {
	case <-w.exited:
		return w.err
	case <-time.After(hangTimeout):
		w.t.Fatalf("%s still running %v later (a hang): %s", w.name, hangTimeout, w.where())
	}
	return nil
}

// complete waits for the process to exit, failing the test at once
// instead if it is seen in state D while checked; it reports whether the
// process exited.
func (w *watched) complete() bool {
	w.t.Helper()
	deadline := time.After(hangTimeout)
	for {
		select {
		case <-w.exited:
			w.neverD()
			return true
		case <-deadline:
			w.t.Errorf("%s still running %v later (a hang): %s", w.name, hangTimeout, w.where())
			return false
		case <-time.After(5 * time.Millisecond):
		}
		if d := w.seenD(); len(d) > 0 {
			w.t.Errorf("%s sleeps uninterruptibly (state D): %s", w.name, d[0])
			return false
		}
	}
}

// line returns the next line the process prints.
func (w *watched) line() string {
	w.t.Helper()
	select {
	case l, ok := <-w.lines:
		if !ok {
			err := w.wait()
			w.t.Fatalf("%s exited without printing a line: %v; stderr %q", w.name, err, w.stderrText())
		}
		return l
	case <-time.After(hangTimeout):
		w.t.Fatalf("%s printed nothing within %v (a hang): %s", w.name, hangTimeout, w.where())
	}
	return ""
}

// output waits for the exit and returns every line not yet read.
func (w *watched) output() []string {
	w.t.Helper()
	w.wait()
	var out []string
	for l := range w.lines {
		out = append(out, l)
	}
	return out
}

func (w *watched) stderrText() string {
	b, _ := os.ReadFile(w.errf.Name())
	return string(b)
}

// killedBy reports whether the exited process died of sig.
func (w *watched) killedBy(sig syscall.Signal) bool {
	ws, ok := w.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// where says in which state each thread of the process sleeps, and where.
func (w *watched) where() string {
	var s []string
	for _, ts := range taskStates(w.cmd.Process.Pid) {
		s = append(s, ts.where())
	}
	if len(s) == 0 {
		return "(no threads)"
	}
	return strings.Join(s, "; ")
}

// state returns the scheduler state of the process's main thread.
func (w *watched) state() byte {
	pid := w.cmd.Process.Pid
	for _, ts := range taskStates(pid) {
		if ts.tid == pid {
			return ts.state
		}
	}
	return 0
}

// waitState waits until the main thread's state is one of states.
func (w *watched) waitState(states string) {
	w.t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for time.Now().Before(deadline) {
		if s := w.state(); s != 0 && strings.IndexByte(states, s) >= 0 {
			return
		}
		if !w.running() {
			w.t.Fatalf("%s exited (%v) before reaching state %s, printing %q; stderr %q", w.name, w.err, states, w.output(), w.stderrText())
		}
		time.Sleep(time.Millisecond)
	}
	w.t.Fatalf("%s never reached state %s: %s", w.name, states, w.where())
}

// taskState is one thread's line of /proc/PID/task/TID/stat.
type taskState struct {
	pid, tid int
	comm     string
	state    byte
}

// taskStates returns the threads of pid and of its descendants.
func taskStates(pid int) []taskState {
	var out []taskState
	var visit func(pid, depth int)
	visit = func(pid, depth int) {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return
		}
		for _, task := range tasks {
			tid, err := strconv.Atoi(task.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
			if err != nil {
				continue
			}
			s := string(b)
			open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
			if open < 0 || end < 0 || end+2 >= len(s) {
				continue
			}
			out = append(out, taskState{pid, tid, s[open+1 : end], s[end+2]})
			if depth < 4 {
				kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, tid))
				for _, k := range strings.Fields(string(kids)) {
					if n, err := strconv.Atoi(k); err == nil {
						visit(n, depth+1)
					}
				}
			}
		}
	}
	visit(pid, 0)
	return out
}

// where names the thread, its state, its wchan and the top of its kernel
// stack.
func (ts taskState) where() string {
	dir := fmt.Sprintf("/proc/%d/task/%d/", ts.pid, ts.tid)
	wchan, _ := os.ReadFile(dir + "wchan")
	stack, _ := os.ReadFile(dir + "stack")
	var frames []string
	for _, l := range strings.Split(string(stack), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		fn, _, _ := strings.Cut(f[1], "+")
		frames = append(frames, fn)
		if len(frames) == 6 {
			break
		}
	}
	return fmt.Sprintf("%s[%d] state %c wchan %s stack %s", ts.comm, ts.tid, ts.state, wchan, strings.Join(frames, "<"))
}

// benignD reports whether a 'D' sample (as where describes it) is none
// of a channel's business. Only a sleep in FUSE's paths counts: a fuse_*
// frame, or the VFS's lock waits around them (utimes, truncate). Not a
// moment of vfork, execve or exit (the pyenv shims fork and exec python),
// a pipe's mutex, a parallel lookup or an ext4 inode read; nor a thread
// that no longer slept by the time its wchan was read. A thread stuck for
// good always shows where it sleeps.
func benignD(where string) bool {
	_, rest, _ := strings.Cut(where, " wchan ")
	wchan, stack, _ := strings.Cut(rest, " stack ")
	if wchan == "0" || wchan == "" || stack == "" {
		return true
	}
	if strings.Contains(stack, "fuse") {
		return false
	}
	// The VFS's own waits for a file's locks, which show no fuse frame.
	for _, lock := range []string{"vfs_utimes", "do_truncate", "notify_change", "chmod_common", "chown_common"} {
		if strings.HasPrefix(stack, lock) && !strings.Contains(stack, "ext4") {
			return false
		}
	}
	return true
}

// ---- channels with parked writers ----

func stucktool(t *testing.T) string { return cBinary(t, "clients/stucktool.c") }

// waitParked waits until ch's status shows key = want, failing at once if
// one of ws sleeps uninterruptibly or exits meanwhile.
func waitParked(t *testing.T, ch, key, want string, ws ...*watched) {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	var st map[string]string
	for time.Now().Before(deadline) {
		if st = readStatus(t, ch); st[key] == want {
			return
		}
		for _, w := range ws {
			if d := w.seenD(); len(d) > 0 {
				t.Fatalf("waiting for %s %s: %s sleeps uninterruptibly instead of waiting in the daemon: %s", key, want, w.name, d[0])
			}
			if !w.running() {
				t.Fatalf("waiting for %s %s: %s exited (%v), printing %q; stderr %q", key, want, w.name, w.err, w.output(), w.stderrText())
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("status never showed %s %s: %v", key, want, st)
}

// fullChannel makes a channel whose queue (queue-msgs 1) holds "fill" and
// parks one blocking C writer for each message in parked, in order.
func fullChannel(t *testing.T, d *daemon, name string, parked ...string) (ch string, writers []*watched) {
	t.Helper()
	ch = d.channel(name)
	msg := filepath.Join(ch, "msg")
	writeCtl(t, ch, "queue-msgs 1")
	tool := stucktool(t)
	run(t, tool, "write", msg, "fill")
	for i, m := range parked {
		w := startWatched(t, "parked writer of "+q(m), true, tool, "write", msg, m)
		waitParked(t, ch, "blocked_writers", strconv.Itoa(i+1), append(writers, w)...)
		writers = append(writers, w)
	}
	return ch, writers
}

// drain reads ch's queue, one message a read, until every writer in ws
// has exited and the queue is empty, and returns what it read.
func drain(t *testing.T, ch string, ws ...*watched) []string {
	t.Helper()
	msg := filepath.Join(ch, "msg")
	var got []string
	deadline := time.Now().Add(hangTimeout)
	for {
		// Whether the writers are done is looked at before the queue: a
		// writer that finishes in between has its message queued by then
		// (on a NATS-backed channel a parked writer completes a little
		// after the read that made room, not within it).
		done := true
		for _, w := range ws {
			done = done && !w.running()
		}
		st := readStatus(t, ch)
		if st["messages"] != "0" {
			got = append(got, cMessages(t, run(t, bins.msgtool, "read", msg, "1", strconv.Itoa(2<<20)))...)
			continue
		}
		if done {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("writers still running %v after the queue was emptied: %v", hangTimeout, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantCounters checks status counters.
func wantCounters(t *testing.T, ch, when string, kv ...string) {
	t.Helper()
	st := readStatus(t, ch)
	for i := 0; i < len(kv); i += 2 {
		if st[kv[i]] != kv[i+1] {
			t.Errorf("%s: status %s %s, want %s (status %v)", when, kv[i], st[kv[i]], kv[i+1], st)
		}
	}
}

// stillParked checks that the parked writers are still waiting, as
// proof that what just completed did not merely wait for them.
func stillParked(t *testing.T, ch, after string, ws ...*watched) {
	t.Helper()
	for _, w := range ws {
		if !w.running() {
			t.Errorf("after %s: %s is no longer parked (%v, %q)", after, w.name, w.err, w.output())
		}
	}
	wantCounters(t, ch, "after "+after, "blocked_writers", strconv.Itoa(len(ws)), "messages", "1")
}

// ---- the issue's scenario ----

// issueScenario is the issue's shell session, verbatim; /ipc is the mount.
var issueScenario = []string{
	`mkdir /ipc/d5; echo "queue-msgs 1" > /ipc/d5/ctl; echo fill > /ipc/d5/msg`,
	`echo w1 > /ipc/d5/msg &`,
	`python3 -c "import os; fd=os.open('/ipc/d5/msg', os.O_WRONLY|os.O_NONBLOCK); os.write(fd,b'w2')"`,
	`tail -f /ipc/d5/msg`,
	`touch /ipc/d5/msg`,
	`python3 -c "open('/ipc/d5/msg','a')"`,
	`python3 -c "import os; os.fsync(os.open('/ipc/d5/msg', os.O_RDONLY|os.O_NONBLOCK))"`,
}

func testStuckIssueScenario(t *testing.T, d *daemon) {
	stucktool(t) // skips without a C compiler (drain reads with msgtool)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	lines := make([]string, len(issueScenario))
	for i, l := range issueScenario {
		lines[i] = strings.ReplaceAll(l, "/ipc/", d.mnt+"/")
	}
	ch := filepath.Join(d.mnt, "d5")
	sh(t, nil, lines[0])
	w1 := startWatched(t, "echo w1 > msg", true, "sh", "-c", strings.TrimSuffix(lines[1], " &"))
	waitParked(t, ch, "blocked_writers", "1", w1)

	nb := startWatched(t, lines[2], true, "sh", "-c", lines[2])
	if nb.complete() {
		if ee, ok := nb.err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(nb.stderrText(), "BlockingIOError") {
			t.Errorf("%s: %v, stderr %q: want BlockingIOError (EAGAIN) at once", lines[2], nb.err, nb.stderrText())
		}
	}
	tail := startWatched(t, lines[3], true, "sh", "-c", "exec "+lines[3])
	waitSettled(t, tail)
	for _, l := range lines[4:] {
		c := startWatched(t, l, true, "sh", "-c", l)
		if c.complete() {
			t.Logf("%s: exit %v, stderr %q", l, c.err, c.stderrText())
		}
	}
	if t.Failed() {
		return // the processes stuck are freed when the daemon stops
	}
	tail.neverD()
	tail.signal(syscall.SIGTERM)
	tail.wait()
	if !tail.killedBy(syscall.SIGTERM) {
		t.Errorf("tail -f after SIGTERM: %v, want killed by SIGTERM", tail.err)
	}
	// tail may have taken messages; with what is left, each came out once.
	tailOut := tail.output()
	left := drain(t, ch, w1)
	w1.neverD()
	t.Logf("tail -f printed %q; left in the queue: %q", tailOut, left)
	seen := map[string]int{}
	for _, m := range append(tailOut, left...) {
		seen[strings.TrimSuffix(m, "\n")]++
	}
	for m, n := range seen {
		if (m != "fill" && m != "w1") || n != 1 {
			t.Errorf("%q came out %d times: want fill and w1 at most once each, nothing else", m, n)
		}
	}
	if err := w1.wait(); err != nil {
		t.Errorf("echo w1 > msg: %v, stderr %q", err, w1.stderrText())
	}
	st := readStatus(t, ch)
	if st["sent"] != "2" || st["messages"] != "0" || st["received"] != "2" || st["blocked_writers"] != "0" {
		t.Errorf("at the end: %v, want sent 2 (fill, w1), received 2, nothing queued or blocked", st)
	}
}

// waitSettled waits until a long-running client (tail -f) sleeps in a
// system call that waits (its 1 s poll, a read), interruptibly, having
// done whatever it does at start; a 'D' on the way fails the test at once.
func waitSettled(t *testing.T, w *watched) {
	t.Helper()
	waiting := map[string]bool{"0": true, "7": true, "23": true, "35": true, "230": true, "232": true, "270": true, "271": true, "281": true}
	deadline := time.Now().Add(hangTimeout)
	for time.Now().Before(deadline) {
		if d := w.seenD(); len(d) > 0 {
			t.Errorf("%s sleeps uninterruptibly: %s", w.name, d[0])
			return
		}
		if !w.running() {
			t.Errorf("%s exited: %v, stderr %q", w.name, w.err, w.stderrText())
			return
		}
		pid := w.cmd.Process.Pid
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", pid))
		if nr, _, _ := strings.Cut(string(b), " "); waiting[nr] && w.state() == 'S' {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("%s never settled: %s", w.name, w.where())
}

// ---- writers behind parked writers ----

// testStuckWriters parks two writers, then sends more: blocking writers
// wait in the daemon too and die at once of SIGINT, SIGTERM and SIGKILL
// (a handled SIGUSR1 gets EINTR), O_NONBLOCK writers get EAGAIN at once,
// from C, Go and Python; nothing they wrote is queued, and the parked
// writers' messages come out once each.
func testStuckWriters(t *testing.T, d *daemon) {
	tool := stucktool(t)
	ch, parked := fullChannel(t, d, "w", "p1", "p2")
	msg := filepath.Join(ch, "msg")

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		w := startWatched(t, "a third blocking writer", true, tool, "write", msg, "killed by "+sig.String())
		waitParked(t, ch, "blocked_writers", "3", append(parked, w)...)
		w.neverD()
		w.signal(sig)
		w.wait()
		if !w.killedBy(sig) {
			t.Errorf("blocking writer after %v: %v, output %q: want killed by it", sig, w.err, w.output())
		}
		waitStatus(t, ch, "blocked_writers", "2")
	}
	w := startWatched(t, "a writer with a SIGUSR1 handler", true, tool, "write", msg, "interrupted", "usr1")
	waitParked(t, ch, "blocked_writers", "3", append(parked, w)...)
	w.neverD()
	w.signal(syscall.SIGUSR1)
	if got := w.line(); got != "EINTR" {
		t.Errorf("write(2) of a writer whose SIGUSR1 handler ran: %s, want EINTR", got)
	}
	waitStatus(t, ch, "blocked_writers", "2")

	nb := startWatched(t, "an O_NONBLOCK C writer", true, tool, "write", msg, "nonblocking", "nonblock")
	if got := nb.line(); got != "EAGAIN" {
		t.Errorf("O_NONBLOCK write(2) behind parked writers: %s, want EAGAIN", got)
	}
	nb.wait()
	nb.neverD()
	g := startProbe(t)
	g.want("open w "+q(msg)+" w,nonblock", "ok")
	g.send(`write w "go nonblocking"`)
	if got := g.result(); got != "EAGAIN" {
		t.Errorf("Go O_NONBLOCK write behind parked writers: %s, want EAGAIN", got)
	}
	g.want("nonblock w off", "ok")
	g.want("nonblock w on", "ok")
	if got := g.do(`write w "after fcntl"`); got != "EAGAIN" {
		t.Errorf("write after fcntl(F_SETFL, O_NONBLOCK): %s, want EAGAIN", got)
	}
	g.close()
	if _, err := exec.LookPath("python3"); err == nil {
		py := startWatched(t, "an O_NONBLOCK python writer", true, "python3", "-c", `import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.set_blocking(fd, False)
try:
    os.write(fd, b"python")
    print("written")
except BlockingIOError:
    print("EAGAIN")`, msg)
		if got := py.line(); got != "EAGAIN" {
			t.Errorf("python write after os.set_blocking(fd, False): %s, want EAGAIN", got)
		}
		py.wait()
		py.neverD()
	}
	stillParked(t, ch, "the other writers", parked...)
	if d := daemonStats(t, d); d["parked_requests"] != 2 {
		t.Errorf("parked_requests %v, want 2 (the parked writers)", d["parked_requests"])
	}

	got := drain(t, ch, parked...)
	slices.Sort(got)
	if want := []string{"fill", "p1", "p2"}; !slices.Equal(got, want) {
		t.Errorf("the queue gave %q, want %q: each parked message once, nothing of the others", got, want)
	}
	for _, w := range parked {
		if out := w.output(); !slices.Equal(out, []string{"ok 2"}) || w.err != nil {
			t.Errorf("%s: %q %v, want ok 2", w.name, out, w.err)
		}
		w.neverD()
	}
	wantCounters(t, ch, "at the end", "sent", "3", "received", "3", "messages", "0", "blocked_writers", "0")
}

// ---- every other operation ----

// stuckOps are the operations on msg that must complete (or fail) at once
// while a writer waits in the daemon for room. want, if set, is what
// their output must be. MSG and CH are replaced by the paths.
var stuckOps = map[string]struct {
	argv []string
	want string
}{
	"touch":                      {[]string{"touch", "MSG"}, ""},
	"stat":                       {[]string{"stat", "MSG"}, ""},
	"ls -l":                      {[]string{"ls", "-l", "CH"}, ""},
	"cat status":                 {[]string{"cat", "CH/status"}, ""},
	"open O_APPEND":              {[]string{"python3", "-c", `import sys; open(sys.argv[1], "a")`, "MSG"}, ""},
	"shell truncation":           {[]string{"sh", "-c", `: > "$1"`, "sh", "MSG"}, ""},
	"fsync of an O_NONBLOCK fd":  {[]string{"python3", "-c", `import os, sys; os.fsync(os.open(sys.argv[1], os.O_RDONLY|os.O_NONBLOCK))`, "MSG"}, ""},
	"fsync of a writer's fd":     {[]string{"python3", "-c", `import os, sys; os.fsync(os.open(sys.argv[1], os.O_WRONLY))`, "MSG"}, ""},
	"lseek SEEK_END":             {[]string{"python3", "-c", `import os, sys; print(os.lseek(os.open(sys.argv[1], os.O_RDONLY|os.O_NONBLOCK), 0, os.SEEK_END))`, "MSG"}, ""},
	"lseek SEEK_END of a writer": {[]string{"python3", "-c", `import os, sys; print(os.lseek(os.open(sys.argv[1], os.O_WRONLY), 0, os.SEEK_END))`, "MSG"}, ""},
	"open and close for writing": {[]string{"python3", "-c", `import os, sys; os.close(os.open(sys.argv[1], os.O_WRONLY))`, "MSG"}, ""},
	"O_NONBLOCK write":           {[]string{"python3", "-c", "import os, sys\nfd = os.open(sys.argv[1], os.O_WRONLY|os.O_NONBLOCK)\ntry:\n    os.write(fd, b'x')\n    print('written')\nexcept BlockingIOError:\n    print('EAGAIN')", "MSG"}, "EAGAIN"},
	"poll for POLLOUT":           {[]string{"python3", "-c", "import os, select, sys\nfd = os.open(sys.argv[1], os.O_WRONLY|os.O_NONBLOCK)\np = select.poll()\np.register(fd, select.POLLOUT)\nprint(p.poll(0))", "MSG"}, "[]"},
}

// testStuckOps runs each operation on a channel of its own whose queue is
// full and whose writer is parked: it completes without ever sleeping
// uninterruptibly, the writer still parked; then tail -f, which never
// completes but must not sleep uninterruptibly either and dies of SIGTERM.
func testStuckOps(t *testing.T, d *daemon) {
	stucktool(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	i := 0
	for name, op := range stuckOps {
		i++
		ch := fmt.Sprintf("op%d", i)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ch, parked := fullChannel(t, d, ch, "parked")
			argv := make([]string, len(op.argv))
			for i, a := range op.argv {
				argv[i] = strings.ReplaceAll(strings.ReplaceAll(a, "MSG", filepath.Join(ch, "msg")), "CH", ch)
			}
			c := startWatched(t, name, true, argv...)
			if !c.complete() {
				return
			}
			out := c.output()
			t.Logf("%s: exit %v, output %q, stderr %q", name, c.err, out, c.stderrText())
			if op.want != "" && !slices.Equal(out, []string{op.want}) {
				t.Errorf("%s: %q, want %q", name, out, op.want)
			}
			stillParked(t, ch, name, parked...)
			if got := drain(t, ch, parked...); !slices.Equal(got, []string{"fill", "parked"}) {
				t.Errorf("after %s the queue gave %q, want fill and parked", name, got)
			}
			wantCounters(t, ch, "at the end", "sent", "2", "received", "2", "blocked_writers", "0")
		})
	}
	t.Run("tail -f", func(t *testing.T) {
		t.Parallel()
		ch, parked := fullChannel(t, d, "tail", "parked")
		tail := startWatched(t, "tail -f", true, "tail", "-f", filepath.Join(ch, "msg"))
		if waitSettled(t, tail); t.Failed() {
			return
		}
		tail.signal(syscall.SIGTERM)
		tail.wait()
		if !tail.killedBy(syscall.SIGTERM) {
			t.Errorf("tail -f after SIGTERM: %v, want killed by it", tail.err)
		}
		out := tail.output()
		left := drain(t, ch, parked...)
		t.Logf("tail -f printed %q; left in the queue %q", out, left)
		st := readStatus(t, ch)
		if st["sent"] != "2" || st["received"] != "2" {
			t.Errorf("at the end: %v, want sent 2 received 2", st)
		}
	})
}

// ---- stops, ptrace, freezes ----

// disruption does something to a process blocked in read(2) or write(2)
// that must not end the call: the call goes on and completes normally.
type disruption func(t *testing.T, w *watched, ch string)

var disruptions = map[string]disruption{
	"SIGSTOP and SIGCONT": stopCont,
	"strace -p":           straceAttach,
	"cgroup freeze":       cgroupFreeze,
}

func stopCont(t *testing.T, w *watched, ch string) {
	for range 2 { // Ctrl-Z, fg, Ctrl-Z, fg
		if !w.running() {
			return // the call ended (the test says how)
		}
		w.signal(syscall.SIGSTOP)
		w.waitState("DTt")
		readStatus(t, ch) // a round trip after the INTERRUPT
		w.signal(syscall.SIGCONT)
	}
}

func straceAttach(t *testing.T, w *watched, ch string) {
	t.Helper()
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("no strace (scripts/setup.sh installs it)")
	}
	w.stopCheckingD()
	out := filepath.Join(t.TempDir(), "strace.out")
	s := startWatched(t, "strace -p", false, "strace", "-o", out, "-p", strconv.Itoa(w.cmd.Process.Pid))
	deadline := time.Now().Add(hangTimeout)
	for tracerPid(w.cmd.Process.Pid) == 0 {
		if !w.running() {
			t.Fatalf("%s exited as strace attached: %v, output %q", w.name, w.err, w.output())
		}
		if time.Now().After(deadline) || !s.running() {
			t.Fatalf("strace never attached: %v %q", s.err, s.stderrText())
		}
		time.Sleep(time.Millisecond)
	}
	w.waitState("DtT")
	readStatus(t, ch)
	t.Cleanup(func() {
		b, _ := os.ReadFile(out)
		t.Logf("strace -p printed %q, then %q", s.stderrText(), b)
	})
	// strace ends when the traced process does.
}

func tracerPid(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "TracerPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// cgroup2Dir returns the cgroup v2 directory of this process, or why
// there is none to use.
func cgroup2Dir() (string, string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err.Error()
	}
	root := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i := slices.Index(f, "-"); i > 4 && i+1 < len(f) && f[i+1] == "cgroup2" {
			root = f[4]
			break
		}
	}
	if root == "" {
		return "", "cgroup v2 is not mounted"
	}
	cg, _ := os.ReadFile("/proc/self/cgroup")
	for _, l := range strings.Split(string(cg), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return filepath.Join(root, p), ""
		}
	}
	return "", "this process has no cgroup v2 path"
}

var cgroupSeq struct {
	sync.Mutex
	n int
}

func cgroupFreeze(t *testing.T, w *watched, ch string) {
	t.Helper()
	parent, why := cgroup2Dir()
	if why != "" {
		t.Skip(why)
	}
	cgroupSeq.Lock()
	cgroupSeq.n++
	dir := filepath.Join(parent, fmt.Sprintf("ipcfs-test-%d-%d", os.Getpid(), cgroupSeq.n))
	cgroupSeq.Unlock()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup v2 group: %v", err)
	}
	freeze := filepath.Join(dir, "cgroup.freeze")
	if _, err := os.Stat(freeze); err != nil {
		os.Remove(dir)
		t.Skipf("no cgroup.freeze in cgroup v2: %v", err)
	}
	pid := strconv.Itoa(w.cmd.Process.Pid)
	t.Cleanup(func() {
		os.WriteFile(freeze, []byte("0"), 0)
		if w.running() {
			os.WriteFile(filepath.Join(parent, "cgroup.procs"), []byte(pid), 0)
		}
		for range 100 {
			if os.Remove(dir) == nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("could not remove the cgroup %s", dir)
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(pid), 0); err != nil {
		t.Fatalf("moving the process into %s: %v", dir, err)
	}
	w.stopCheckingD()
	if err := os.WriteFile(freeze, []byte("1"), 0); err != nil {
		t.Fatalf("freezing: %v", err)
	}
	// Frozen, or (the thread kept waiting in the daemon) in the killable
	// sleep the freezer's wakeup leaves it in.
	deadline := time.Now().Add(hangTimeout)
	for {
		ev, _ := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if strings.Contains(string(ev), "frozen 1") || w.state() == 'D' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cgroup never froze: %s; %s", ev, w.where())
		}
		time.Sleep(time.Millisecond)
	}
	readStatus(t, ch)
	if err := os.WriteFile(freeze, []byte("0"), 0); err != nil {
		t.Fatalf("thawing: %v", err)
	}
}

// testStuckSurvives disrupts a blocked reader and a parked writer with
// each disruption: neither call ends (no EINTR), and each completes once
// its peer comes, with no message lost or doubled.
func testStuckSurvives(t *testing.T, d *daemon) {
	tool := stucktool(t)
	i := 0
	for name, disrupt := range disruptions {
		i++
		rch, wch := fmt.Sprintf("r%d", i), fmt.Sprintf("w%d", i)
		t.Run("read/"+name, func(t *testing.T) {
			t.Parallel()
			ch := d.channel(rch)
			msg := filepath.Join(ch, "msg")
			r := startWatched(t, "a blocked reader", true, tool, "read", msg, "100", "1")
			waitParked(t, ch, "blocked_readers", "1", r)
			r.neverD()
			disrupt(t, r, ch)
			run(t, tool, "write", msg, "after "+name)
			if got := r.line(); got != "ok "+strconv.Itoa(len("after "+name))+":after "+name {
				t.Errorf("the blocked read(2) after %s: %s, want the message written after", name, got)
			}
			if err := r.wait(); err != nil {
				t.Errorf("reader: %v", err)
			}
			wantCounters(t, ch, "at the end", "sent", "1", "received", "1", "messages", "0", "blocked_readers", "0")
		})
		t.Run("write/"+name, func(t *testing.T) {
			t.Parallel()
			ch, parked := fullChannel(t, d, wch, "parked")
			w := parked[0]
			disrupt(t, w, ch)
			if got := cMessages(t, run(t, bins.msgtool, "read", filepath.Join(ch, "msg"), "1", "100")); !slices.Equal(got, []string{"fill"}) {
				t.Errorf("first read: %q, want fill", got)
			}
			if got := w.line(); got != "ok 6" {
				t.Errorf("the parked write(2) after %s: %s, want ok 6", name, got)
			}
			if got := drain(t, ch, w); !slices.Equal(got, []string{"parked"}) {
				t.Errorf("then the queue gave %q, want parked", got)
			}
			wantCounters(t, ch, "at the end", "sent", "2", "received", "2", "messages", "0", "blocked_writers", "0")
		})
	}
}

// ---- signals still interrupt ----

func testStuckInterrupts(t *testing.T, d *daemon) {
	tool := stucktool(t)
	t.Run("Ctrl-C on cat msg", func(t *testing.T) {
		t.Parallel()
		ch := d.channel("cat")
		msg := filepath.Join(ch, "msg")
		c := startWatched(t, "cat msg", true, "cat", msg)
		waitParked(t, ch, "blocked_readers", "1", c)
		c.neverD()
		c.signal(syscall.SIGINT)
		c.wait()
		if !c.killedBy(syscall.SIGINT) {
			t.Errorf("cat msg after SIGINT: %v, want killed by SIGINT", c.err)
		}
		waitStatus(t, ch, "blocked_readers", "0")
		run(t, tool, "write", msg, "after cat")
		if got := cMessages(t, run(t, bins.msgtool, "read", msg, "1", "100")); !slices.Equal(got, []string{"after cat"}) {
			t.Errorf("the next reader got %q, want the message written after cat died", got)
		}
		wantCounters(t, ch, "at the end", "sent", "1", "received", "1")
	})
	t.Run("SIGINT to python", func(t *testing.T) {
		t.Parallel()
		ch := d.channel("py")
		msg := filepath.Join(ch, "msg")
		r := startPy(t, "reader")
		r.open("r", msg, "r")
		r.send("read", "r", 100)
		waitStatus(t, ch, "blocked_readers", "1")
		r.signal(syscall.SIGINT)
		if rep := r.reply("read"); rep.Exception != "KeyboardInterrupt" {
			t.Errorf("SIGINT to python blocked in os.read: %s, want KeyboardInterrupt", rep)
		}
		waitStatus(t, ch, "blocked_readers", "0")
		run(t, tool, "write", msg, "after SIGINT")
		if got := r.read("r", 100); got != "after SIGINT" {
			t.Errorf("the next os.read: %q, want the message written after", got)
		}
	})
	t.Run("SIGUSR1 with a handler", func(t *testing.T) {
		t.Parallel()
		ch := d.channel("usr1")
		msg := filepath.Join(ch, "msg")
		r := startWatched(t, "a reader with a SIGUSR1 handler", true, tool, "read", msg, "100", "2", "usr1")
		waitParked(t, ch, "blocked_readers", "1", r)
		r.neverD()
		r.signal(syscall.SIGUSR1)
		if got := r.line(); got != "EINTR" {
			t.Errorf("read(2) whose SIGUSR1 handler ran: %s, want EINTR", got)
		}
		waitStatus(t, ch, "blocked_readers", "1")
		run(t, tool, "write", msg, "after usr1")
		if got := r.line(); got != "ok 10:after usr1" {
			t.Errorf("the next read(2): %s, want the message written after", got)
		}
		wantCounters(t, ch, "at the end", "sent", "1", "received", "1", "messages", "0")
	})
	t.Run("SIGKILL while stopped: a reader", func(t *testing.T) {
		t.Parallel()
		ch := d.channel("stopkill")
		msg := filepath.Join(ch, "msg")
		r := startWatched(t, "a blocked reader", true, tool, "read", msg, "100", "1")
		waitParked(t, ch, "blocked_readers", "1", r)
		r.signal(syscall.SIGSTOP)
		r.waitState("DTt")
		readStatus(t, ch)
		r.signal(syscall.SIGKILL)
		r.wait()
		if !r.killedBy(syscall.SIGKILL) {
			t.Errorf("stopped reader after SIGKILL: %v, want killed", r.err)
		}
		waitStatus(t, ch, "blocked_readers", "0")
		run(t, tool, "write", msg, "after kill")
		if got := cMessages(t, run(t, bins.msgtool, "read", msg, "1", "100")); !slices.Equal(got, []string{"after kill"}) {
			t.Errorf("the next reader got %q, want the message written after the kill", got)
		}
		waitStatus(t, ch, "readers", "0") // files are released after their process exits
		wantCounters(t, ch, "at the end", "sent", "1", "received", "1")
	})
	t.Run("SIGKILL while stopped: a writer", func(t *testing.T) {
		t.Parallel()
		ch, parked := fullChannel(t, d, "stopkillw", "never queued")
		w := parked[0]
		w.signal(syscall.SIGSTOP)
		w.waitState("DTt")
		readStatus(t, ch)
		w.signal(syscall.SIGKILL)
		w.wait()
		if !w.killedBy(syscall.SIGKILL) {
			t.Errorf("stopped writer after SIGKILL: %v, want killed", w.err)
		}
		waitStatus(t, ch, "blocked_writers", "0")
		if got := drain(t, ch); !slices.Equal(got, []string{"fill"}) {
			t.Errorf("the queue gave %q, want only fill", got)
		}
		waitStatus(t, ch, "writers", "0")
		wantCounters(t, ch, "at the end", "sent", "1", "received", "1")
	})
}

// ---- open racing rmdir ----

func testStuckOpenRmdir(t *testing.T, d *daemon) {
	const rounds = 3000
	out := strings.TrimSpace(run(t, stucktool(t), "race", d.mnt, strconv.Itoa(rounds)))
	t.Logf("%d opens racing rmdir: %s", rounds, out)
	counts := map[string]int{}
	for _, f := range strings.Fields(out) {
		if k, v, ok := strings.Cut(f, "="); ok {
			counts[k], _ = strconv.Atoi(v)
		}
	}
	if counts["eio"] != 0 || counts["other"] != 0 || counts["rmdir_errors"] != 0 || counts["ok"]+counts["enoent"] != rounds {
		t.Errorf("open racing rmdir: %s; want only successes and ENOENT, every rmdir succeeding", out)
	}
	if st := daemonStats(t, d); st["channels"] != 0 || st["handles"] != 0 {
		t.Errorf("after the race: channels %v handles %v, want 0 and 0", st["channels"], st["handles"])
	}
}

// ---- messages up to 1 MiB ----

// atomicMax is the largest write that is always one message: 255 pages
// and a byte, which fit in 256 pages whatever the buffer's alignment.
const atomicMax = 255*4096 + 1

// bigPattern is stucktool bigwrite's content.
func bigPattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i ^ i>>8 ^ i>>16 ^ seed)
	}
	return b
}

// firstDifference describes where got differs from want.
func firstDifference(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("%d bytes, first difference at %d", len(got), i)
		}
	}
	return fmt.Sprintf("%d bytes, want %d", len(got), len(want))
}

func testStuckAtomicWrite(t *testing.T, d *daemon) {
	tool := stucktool(t)
	ch := d.channel("big")
	msg := filepath.Join(ch, "msg")
	for _, off := range []int{0, 1, 100, 2048, 4095} {
		for _, roff := range []int{0, 16} {
			if got := run(t, tool, "bigwrite", msg, strconv.Itoa(atomicMax), strconv.Itoa(off), strconv.Itoa(off)); got != fmt.Sprintf("ok %d\n", atomicMax) {
				t.Fatalf("write(2) of %d bytes at buffer offset %d: %q", atomicMax, off, got)
			}
			wantOneMessage(t, ch, fmt.Sprintf("a %d-byte write(2) at buffer offset %d", atomicMax, off))
			got := cMessages(t, run(t, tool, "bigread", msg, strconv.Itoa(2<<20), strconv.Itoa(roff), "1"))
			if want := bigPattern(atomicMax, off); len(got) != 1 || got[0] != string(want) {
				t.Errorf("one read(2) with a 2 MiB buffer at offset %d of the message written from offset %d: %s, want the whole message",
					roff, off, firstDifference([]byte(strings.Join(got, "")), want))
			}
			flushRest(t, ch)
		}
	}
	// Python's os.write, from wherever Python's bytes lie.
	if _, err := exec.LookPath("python3"); err == nil {
		data := pyRandomBytes(t, atomicMax, 7)
		w := startPy(t, "writer")
		w.open("w", msg, "w")
		if got := w.ok("writefile", "w", pyTempFile(t, data)).N; got != atomicMax {
			t.Fatalf("python os.write of %d bytes: %d", atomicMax, got)
		}
		wantOneMessage(t, ch, "python's write")
		if got := cMessages(t, run(t, tool, "bigread", msg, strconv.Itoa(2<<20), "0", "1")); len(got) != 1 || got[0] != string(data) {
			t.Errorf("python's message read back: %s", firstDifference([]byte(strings.Join(got, "")), data))
		}
	}
}

// wantOneMessage checks that a write to an empty ch was one message of
// atomicMax bytes.
func wantOneMessage(t *testing.T, ch, what string) {
	t.Helper()
	st := readStatus(t, ch)
	if st["messages"] != "1" || st["bytes"] != strconv.Itoa(atomicMax) {
		t.Errorf("%s became %s messages holding %s bytes (%v), want one message of %d bytes", what, st["messages"], st["bytes"], st, atomicMax)
	}
}

// flushRest empties ch's queue after a failure, so the next case starts
// clean.
func flushRest(t *testing.T, ch string) {
	t.Helper()
	if readStatus(t, ch)["messages"] != "0" {
		writeCtl(t, ch, "flush")
	}
}

func testStuckWritev(t *testing.T, d *daemon) {
	tool := stucktool(t)
	ch := d.channel("v")
	msg := filepath.Join(ch, "msg")
	for _, c := range []struct {
		name                   string
		niov, len, stride, off int
		pieces                 int
	}{
		{"40 bytes on 40 pages", 40, 1, 4096, 0, 1},
		{"40 bytes on 40 pages, each iovec across a page boundary", 20, 2, 4096, 4095, 1},
		{"40 bytes scattered over 235 pages", 40, 1, 6 * 4096, 100, 1},
		{"256 bytes on 256 pages", 256, 1, 4096, 0, 1},
		{"257 bytes on 257 pages", 257, 1, 4096, 0, 2},
	} {
		before := readStatus(t, ch)
		total := c.niov * c.len
		if got := run(t, tool, "writev", msg, strconv.Itoa(c.niov), strconv.Itoa(c.len), strconv.Itoa(c.stride), strconv.Itoa(c.off)); got != fmt.Sprintf("ok %d\n", total) {
			t.Fatalf("%s: writev: %q", c.name, got)
		}
		sent := pyAtoi(t, readStatus(t, ch)["sent"]) - pyAtoi(t, before["sent"])
		got := cMessages(t, run(t, bins.msgtool, "read", msg, strconv.Itoa(sent), "65536"))
		want := make([]byte, total)
		for j := range want {
			want[j] = byte('A' + j%26)
		}
		sizes := make([]int, len(got))
		for i, m := range got {
			sizes[i] = len(m)
		}
		if sent != c.pieces || strings.Join(got, "") != string(want) {
			t.Errorf("%s: a writev of %d bytes became %d messages of %v bytes, want %d holding the bytes in order", c.name, total, sent, sizes, c.pieces)
		}
	}
	wantCounters(t, ch, "at the end", "messages", "0", "truncated", "0")
}

func testStuckPieces(t *testing.T, d *daemon) {
	tool := stucktool(t)
	ch := d.channel("pieces")
	msg := filepath.Join(ch, "msg")
	r := startPy(t, "reader")
	r.open("r", msg, "r")
	for _, c := range []struct {
		n, off int
		pieces []int // the kernel's chunks: 256 pages of the caller's buffer
	}{
		{2 << 20, 0, []int{1 << 20, 1 << 20}},
		{2<<20 + 100, 100, []int{1<<20 - 100, 1 << 20, 200}},
		{atomicMax + 1, 4095, []int{atomicMax, 1}},
	} {
		name := fmt.Sprintf("%d bytes from buffer offset %d", c.n, c.off)
		before := readStatus(t, ch)
		if got := run(t, tool, "bigwrite", msg, strconv.Itoa(c.n), strconv.Itoa(c.off), "3"); got != fmt.Sprintf("ok %d\n", c.n) {
			t.Fatalf("%s: %q", name, got)
		}
		st := readStatus(t, ch)
		if pyAtoi(t, st["sent"])-pyAtoi(t, before["sent"]) != len(c.pieces) || st["bytes"] != strconv.Itoa(c.n) {
			t.Errorf("%s: sent %s→%s bytes %s, want %d pieces holding %d bytes", name, before["sent"], st["sent"], st["bytes"], len(c.pieces), c.n)
		}
		// A read never takes bytes of two pieces (readPieces).
		got, lens, _ := readPieces(t, name, r, ch, c.n, 4*len(c.pieces)+8, 2<<20)
		if want := bigPattern(c.n, 3); !bytes.Equal(got, want) {
			t.Errorf("%s: the pieces' concatenation: %s", name, firstDifference(got, want))
		}
		if !slices.Equal(lens, c.pieces) {
			t.Errorf("%s: pieces of %v bytes, want %v", name, lens, c.pieces)
		}
	}

	// Two writers at once: each one's pieces arrive in order, whole.
	const n, seedA, seedB = 2<<20 + 100, 5, 6
	var ws []*watched
	for _, seed := range []int{seedA, seedB} {
		ws = append(ws, startWatched(t, fmt.Sprintf("writer %d", seed), false, tool, "bigwrite", msg, strconv.Itoa(n), "100", strconv.Itoa(seed)))
	}
	for _, w := range ws {
		if out := w.output(); !slices.Equal(out, []string{fmt.Sprintf("ok %d", n)}) {
			t.Fatalf("%s: %q", w.name, out)
		}
	}
	wantA, wantB := bigPattern(n, seedA), bigPattern(n, seedB)
	var atA, atB int
	var order []string
	for atA+atB < 2*n && len(order) < 64 {
		b := []byte(r.read("r", 2<<20))
		switch {
		case atA+len(b) <= n && bytes.Equal(b, wantA[atA:atA+len(b)]):
			atA += len(b)
			order = append(order, fmt.Sprintf("A%d", len(b)))
		case atB+len(b) <= n && bytes.Equal(b, wantB[atB:atB+len(b)]):
			atB += len(b)
			order = append(order, fmt.Sprintf("B%d", len(b)))
		default:
			t.Fatalf("two writers at once: a read of %d bytes (after %v) continues neither writer's bytes in order", len(b), order)
		}
	}
	t.Logf("two concurrent %d-byte writes were read as %v", n, order)
	if atA != n || atB != n {
		t.Errorf("two writers at once: read %d and %d bytes of theirs, want %d each", atA, atB, n)
	}
	wantCounters(t, ch, "at the end", "messages", "0", "truncated", "0")
}

// ---- memory of blocked readers ----

// vmKB returns a "Vm…:"/"Rss…:" line of /proc/PID/status in KiB.
func vmKB(t *testing.T, pid int, key string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

// testStuckManyReaders parks 4,000 readers (four C processes of 1,000
// threads) and measures the daemon: a parked request must not pin a
// request buffer. The bound is generous; the numbers are for the README.
func testStuckManyReaders(t *testing.T, d *daemon) {
	const procs, threads = 4, 1000
	tool := stucktool(t)
	ch := d.channel("many")
	msg := filepath.Join(ch, "msg")
	pid := d.cmd.Process.Pid
	base := daemonStats(t, d)
	baseRSS := vmKB(t, pid, "VmRSS")
	var rs []*watched
	for i := range procs {
		r := startWatched(t, fmt.Sprintf("reader process %d", i), false, tool, "readers", msg, strconv.Itoa(threads), "4096")
		if got := r.line(); got != "started" {
			t.Fatalf("reader process %d: %q", i, got)
		}
		rs = append(rs, r)
	}
	waitParked(t, ch, "blocked_readers", strconv.Itoa(procs*threads), rs...)
	st := daemonStats(t, d)
	rss, hwm := vmKB(t, pid, "VmRSS"), vmKB(t, pid, "VmHWM")
	mib := func(kb int) float64 { return float64(kb) / 1024 }
	t.Logf("%d blocked readers: daemon RSS %.1f MiB (%.1f MiB before; peak %.1f MiB), Go heap %.1f → %.1f MiB, goroutines %v → %v, parked_requests %v (race detector: %v)",
		procs*threads, mib(rss), mib(baseRSS), mib(hwm), base["heap_alloc"]/(1<<20), st["heap_alloc"]/(1<<20),
		base["goroutines"], st["goroutines"], st["parked_requests"], raceEnabled)
	if st["parked_requests"] != procs*threads {
		t.Errorf("parked_requests %v, want %d", st["parked_requests"], procs*threads)
	}
	if rss > 200<<10 {
		t.Errorf("the daemon's RSS with %d blocked readers is %.1f MiB, want well under 200 MiB: parked requests pin buffers", procs*threads, mib(rss))
	}
	if grow := st["heap_alloc"] - base["heap_alloc"]; grow > 256<<20 {
		t.Errorf("the Go heap grew by %.0f MiB (%.0f KiB a parked reader), want well under 256 MiB: parked requests pin buffers",
			grow/(1<<20), grow/1024/(procs*threads))
	}
	writeCtl(t, ch, "hangup")
	for i, r := range rs {
		if out := r.output(); !slices.Equal(out, []string{fmt.Sprintf("eof=%d data=0 err=0", threads)}) {
			t.Errorf("reader process %d at hangup: %q, stderr %q; want end of file for every thread", i, out, r.stderrText())
		}
	}
	waitStatus(t, ch, "readers", "0")
}
