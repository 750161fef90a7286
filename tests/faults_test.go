package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipcfs/ipcfs/internal/mountinfo"
)

// faultTests is the conformance map of faults: clients and the daemon
// killed at the worst moment. Each test gets its own daemon.
var faultTests = map[string]func(t *testing.T, d *daemon){
	"SIGKILLed blocked reader loses nothing":     testKilledReader,
	"SIGKILLed blocked writer leaves no message": testKilledWriter,
	"a writer behind a blocked writer":           testWriterBehindWriter,
	"SIGTERM wakes blocked clients and unmounts": testDaemonSIGTERM,
	"SIGINT unmounts and exits 0":                testDaemonSIGINT,
	"SIGKILLed daemon: errors, then a remount":   testDaemonSIGKILL,
}

func TestFaults(t *testing.T) { runMounted(t, faultTests) }

func testKilledReader(t *testing.T, d *daemon) {
	ch := d.channel("k")
	msg := filepath.Join(ch, "msg")
	// Warm up the daemon (its pools, its goroutines), then measure.
	sh(t, map[string]string{"CH": ch}, `echo warm > "$CH/msg"; head -n1 "$CH/msg" >/dev/null`)
	base := daemonStats(t, d)

	for round := range 3 {
		// Three readers park in order; the first and the middle one are killed.
		var readers []*prober
		for i := range 3 {
			r := startProbe(t)
			r.want("open r "+q(msg)+" r", "ok")
			r.send("read r 100")
			waitStatus(t, ch, "blocked_readers", strconv.Itoa(i+1))
			readers = append(readers, r)
		}
		readers[0].kill(d)
		readers[1].kill(d)
		waitStatus(t, ch, "blocked_readers", "1")
		waitStatus(t, ch, "readers", "1")
		// The next message goes to the survivor, not to a dead reader.
		m := fmt.Sprintf("round %d", round)
		run(t, bins.goclient, "write", msg, m)
		if got := readers[2].result(); got != "ok "+q(m) {
			t.Errorf("round %d: the surviving reader got %s, want ok %q", round, got, m)
		}
		readers[2].close()
		if st := readStatus(t, ch); st["sent"] != st["received"] || st["messages"] != "0" {
			t.Errorf("round %d: status %v: every message sent was received", round, st)
		}
	}
	waitStatus(t, ch, "readers", "0")
	after := daemonStats(t, d)
	if after["parked_requests"] != 0 || after["handles"] != 0 {
		t.Errorf("after the readers are gone: parked_requests %v, handles %v, want 0 and 0", after["parked_requests"], after["handles"])
	}
	if after["goroutines"] > base["goroutines"]+goroutineSlack {
		t.Errorf("goroutines %v before, %v after killing 6 parked readers: some are left behind", base["goroutines"], after["goroutines"])
	}
	// The daemon still serves this channel and others.
	other := d.channel("other")
	run(t, bins.goclient, "write", filepath.Join(other, "msg"), "fine")
	run(t, bins.goclient, "write", msg, "still")
	if out := run(t, bins.goclient, "read", filepath.Join(other, "msg"), "1"); out != `"fine"`+"\n" {
		t.Errorf("other channel: %q", out)
	}
	if out := run(t, bins.goclient, "read", msg, "1"); out != `"still"`+"\n" {
		t.Errorf("same channel: %q", out)
	}
}

func testKilledWriter(t *testing.T, d *daemon) {
	ch := d.channel("kw")
	msg := filepath.Join(ch, "msg")
	writeCtl(t, ch, "queue-msgs 2")
	run(t, bins.goclient, "write", msg, "one", "two")
	w := startProbe(t)
	w.want("open w "+q(msg)+" w", "ok")
	w.send("write w " + q("never queued"))
	waitStatus(t, ch, "blocked_writers", "1")
	w.kill(d)
	waitStatus(t, ch, "blocked_writers", "0")
	waitStatus(t, ch, "writers", "0")
	// An interrupted write(2) wrote nothing: the queue holds the two it had.
	writeCtl(t, ch, "hangup")
	if out := run(t, bins.goclient, "readall", msg); out != `"one"`+"\n"+`"two"`+"\n" {
		t.Errorf("after a killed writer the queue held %q, want one and two only", out)
	}
	if st := daemonStats(t, d); st["parked_requests"] != 0 {
		t.Errorf("parked_requests %v after the writer died, want 0", st["parked_requests"])
	}
}

// testWriterBehindWriter: the kernel holds a file's inode lock across a
// direct-I/O WRITE, so while one writer waits in the daemon for room, a
// second writer of the same channel waits in the kernel, uninterruptibly,
// even with O_NONBLOCK (README, "Writers wait in line"). Once the first
// completes, the second gets what the spec's rules 5 and 6 promise — EAGAIN
// with O_NONBLOCK, death by a signal that came meanwhile — and nothing is
// lost or duplicated.
func testWriterBehindWriter(t *testing.T, d *daemon) {
	ch := d.channel("w")
	msg := filepath.Join(ch, "msg")
	writeCtl(t, ch, "queue-msgs 1")
	run(t, bins.goclient, "write", msg, "fills the queue")
	first := startProbe(t)
	first.want("open w "+q(msg)+" w", "ok")
	block := func(m string) {
		first.send("write w " + q(m))
		waitStatus(t, ch, "blocked_writers", "1")
	}
	// unblock takes one message, which lets the first writer's in.
	unblock := func() {
		run(t, bins.goclient, "read", msg, "1")
		if got := first.result(); !strings.HasPrefix(got, "ok ") {
			t.Fatalf("first writer: %s", got)
		}
	}
	block("first")

	nb := startProbe(t)
	nb.want("open w "+q(msg)+" w,nonblock", "ok")
	nb.send(`write w "nonblocking"`)
	if stuck := waitFor(t, nb, func() bool { return false }); stuck != "" {
		t.Logf("as documented, the O_NONBLOCK writer waits in the kernel behind the first (%s)", stuck)
	}
	unblock() // the queue is full again, with the first writer's message
	if got := nb.result(); got != "EAGAIN" {
		t.Errorf("O_NONBLOCK write(2) to a full queue: %s, want EAGAIN", got)
	}

	block("second")
	w := startProbe(t)
	w.want("open w "+q(msg)+" w", "ok")
	w.send(`write w "interrupted"`)
	if stuck := waitFor(t, w, func() bool { return readStatus(t, ch)["blocked_writers"] == "2" }); stuck != "" {
		t.Logf("as documented, the blocking writer waits in the kernel behind the first (%s)", stuck)
	}
	w.cmd.Process.Signal(syscall.SIGINT)
	released := false
	deadline := time.After(hangTimeout) // once, not per turn of the loop
	for exited := false; !exited; {
		select {
		case <-w.done():
			err := w.err
			if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
				t.Errorf("writer after SIGINT: %v, want killed by SIGINT", err)
			}
			exited = true
		case <-time.After(10 * time.Millisecond):
			if !released && stuckInKernel(w.cmd.Process.Pid) != "" {
				unblock() // the signal takes effect once the first writer is done
				released = true
			}
		case <-deadline:
			t.Fatalf("writer still running %v after SIGINT", hangTimeout)
		}
	}
	if !released {
		waitStatus(t, ch, "blocked_writers", "1")
		unblock()
	}
	waitStatus(t, ch, "blocked_writers", "0")
	if out := run(t, bins.goclient, "read", msg, "1"); out != q("second")+"\n" {
		t.Errorf("queued after all: %s, want only the first writer's second message", out)
	}
	if st := readStatus(t, ch); st["messages"] != "0" {
		t.Errorf("status %v: the interrupted writer's message got in", st)
	}
}

// waitFor waits until the probe p answers (the answer stays to be read),
// parked() holds, or p sleeps uninterruptibly in the kernel's FUSE write
// path; in the last case it returns where.
func waitFor(t *testing.T, p *prober, parked func() bool) string {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for time.Now().Before(deadline) {
		if len(p.lines) > 0 || parked() {
			return ""
		}
		if where := stuckInKernel(p.cmd.Process.Pid); where != "" {
			return where
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("probe neither answered nor waited anywhere within %v", hangTimeout)
	return ""
}

// stuckInKernel reports where a thread of process pid sleeps
// uninterruptibly in the kernel's FUSE write path (waiting for the inode
// lock), or "".
func stuckInKernel(pid int) string {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		dir := fmt.Sprintf("/proc/%d/task/%s/", pid, task.Name())
		stat, err := os.ReadFile(dir + "stat")
		if err != nil {
			continue
		}
		_, rest, _ := strings.Cut(string(stat), ") ")
		if !strings.HasPrefix(rest, "D") {
			continue
		}
		wchan, _ := os.ReadFile(dir + "wchan")
		if w := string(wchan); strings.Contains(w, "write_iter") || strings.Contains(w, "rwsem") {
			return "state D in " + w
		}
	}
	return ""
}

// testDaemonSIGTERM stops the daemon while readers and writers wait in it
// and a process holds a file open (so the unmount is lazy).
func testDaemonSIGTERM(t *testing.T, d *daemon) {
	rch, wch := d.channel("readers"), d.channel("writers")
	rmsg, wmsg := filepath.Join(rch, "msg"), filepath.Join(wch, "msg")

	// Go clients wait in epoll after their read or write found EAGAIN,
	// which the daemon logs.
	wouldBlock := func(op string) func(map[string]any) bool {
		return func(r map[string]any) bool { return r["op"] == op && r["errno"] == "EAGAIN" }
	}
	waitWouldBlock := func(op string, n int) {
		t.Helper()
		d.waitLog(func(map[string]any) bool { return logCount(d, wouldBlock(op)) > n })
	}

	rawReader := startProbe(t)
	rawReader.want("open r "+q(rmsg)+" r", "ok")
	rawReader.send("read r 100")
	waitStatus(t, rch, "blocked_readers", "1")
	cat := exec.Command("cat", rmsg)
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, rch, "blocked_readers", "2")
	goReader := exec.Command(bins.goclient, "readall", rmsg)
	var goOut, goErr strings.Builder
	goReader.Stdout, goReader.Stderr = &goOut, &goErr
	n := logCount(d, wouldBlock("Read"))
	if err := goReader.Start(); err != nil {
		t.Fatal(err)
	}
	waitWouldBlock("Read", n)

	writeCtl(t, wch, "queue-msgs 1")
	run(t, bins.goclient, "write", wmsg, "fills the queue")
	rawWriter := startProbe(t)
	rawWriter.want("open w "+q(wmsg)+" w", "ok")
	rawWriter.send("write w " + q("blocked"))
	waitStatus(t, wch, "blocked_writers", "1")
	// The Go writer gets a channel of its own: behind the blocked writer it
	// would wait in the kernel for the inode lock, not in epoll.
	gch := d.channel("gowriter")
	writeCtl(t, gch, "queue-msgs 1")
	run(t, bins.goclient, "write", filepath.Join(gch, "msg"), "fills the queue")
	goWriter := exec.Command(bins.goclient, "write", filepath.Join(gch, "msg"), "blocked too")
	var gwErr strings.Builder
	goWriter.Stderr = &gwErr
	n = logCount(d, wouldBlock("Write"))
	if err := goWriter.Start(); err != nil {
		t.Fatal(err)
	}
	waitWouldBlock("Write", n)

	idle := startProbe(t)
	idle.want("open s "+q(filepath.Join(rch, "status"))+" r", "ok")

	if err := d.signal(syscall.SIGTERM); err != nil {
		t.Errorf("daemon after SIGTERM: %v, want exit status 0", err)
	}
	unmountAtEnd(t, d)
	checkDaemonLog(t, d)
	if got := rawReader.result(); got != `ok ""` {
		t.Errorf("blocked read(2) at SIGTERM returned %s, want end of file", got)
	}
	if err := waitTimeout(cat); err != nil {
		t.Errorf("cat at SIGTERM: %v, want end of file and exit 0", err)
	}
	if err := waitTimeout(goReader); err != nil {
		t.Errorf("Go reader in epoll at SIGTERM: %v %s, want end of file", err, goErr.String())
	}
	if got := rawWriter.result(); got != "EPIPE" {
		t.Errorf("blocked write(2) at SIGTERM returned %s, want EPIPE", got)
	}
	if err := waitTimeout(goWriter); err == nil || !strings.Contains(gwErr.String(), "broken pipe") {
		t.Errorf("Go writer in epoll at SIGTERM: %v %q, want EPIPE", err, gwErr.String())
	}
	if isMounted(t, d.mnt) {
		t.Errorf("%s is still in /proc/self/mountinfo after the daemon exited", d.mnt)
	}
	// The file held open belongs to a connection that is gone: an error, not a hang.
	if got := idle.do("pread s 100 0"); got == "ok" || strings.HasPrefix(got, "ok ") {
		t.Errorf("read of a file held open across the daemon's exit: %s, want an error", got)
	} else {
		t.Logf("a file held open across the daemon's exit reads: %s", got)
	}
	for _, want := range []string{`"msg":"signal received, unmounting"`, `"msg":"exiting"`} {
		if !strings.Contains(d.logText(), want) {
			t.Errorf("the daemon never logged %s", want)
		}
	}
}

func testDaemonSIGINT(t *testing.T, d *daemon) {
	ch := d.channel("c")
	r := startProbe(t)
	r.want("open r "+q(filepath.Join(ch, "msg"))+" r", "ok")
	r.send("read r 10")
	waitStatus(t, ch, "blocked_readers", "1")
	if err := d.signal(syscall.SIGINT); err != nil {
		t.Errorf("daemon after SIGINT: %v, want exit status 0", err)
	}
	unmountAtEnd(t, d)
	checkDaemonLog(t, d)
	if got := r.result(); got != `ok ""` {
		t.Errorf("blocked read(2) at SIGINT returned %s, want end of file", got)
	}
	if isMounted(t, d.mnt) {
		t.Errorf("%s is still mounted after SIGINT", d.mnt)
	}
}

// testDaemonSIGKILL kills the daemon: blocked and later operations fail,
// and a new daemon started on the same path at once clears the dead mount
// — even while the kernel still holds the dead root's attributes in its
// cache (a stat of the mountpoint then succeeds).
func testDaemonSIGKILL(t *testing.T, d *daemon) {
	ch := d.channel("c")
	msg := filepath.Join(ch, "msg")
	reader := startProbe(t)
	reader.want("open r "+q(msg)+" r", "ok")
	reader.send("read r 100")
	waitStatus(t, ch, "blocked_readers", "1")
	goReader := exec.Command(bins.goclient, "readall", msg) // waits in epoll
	var goErr strings.Builder
	goReader.Stderr = &goErr
	if err := goReader.Start(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ch, "readers", "2")
	idle := startProbe(t)
	idle.want("open w "+q(msg)+" w", "ok")
	if got := idle.do("stat " + q(d.mnt)); !strings.HasPrefix(got, "ok type=dir") { // cached for a while
		t.Errorf("stat of the mount: %s", got)
	}

	if err := d.signal(syscall.SIGKILL); err == nil {
		t.Fatalf("daemon survived SIGKILL")
	}
	checkDaemonLog(t, d)
	unmountAtEnd(t, d) // if the remount fails
	// A new daemon on the same path, at once: it clears the dead mount and serves.
	d2 := startDaemon(t, d.mnt)
	t.Cleanup(d2.stop)
	d2.waitLog(func(r map[string]any) bool {
		return strings.Contains(fmt.Sprint(r["msg"]), "dead FUSE mount")
	})
	if n := mountCount(t, d.mnt); n != 1 {
		t.Errorf("%d mounts on %s after the remount, want 1 (no stacking on the dead one)", n, d.mnt)
	}

	// The old mount's clients got errors, not hangs.
	if got := reader.result(); got != "ECONNABORTED" && got != "ENOTCONN" {
		t.Errorf("read(2) blocked when the daemon died returned %s, want ECONNABORTED or ENOTCONN", got)
	}
	if err := waitTimeout(goReader); err == nil {
		t.Errorf("Go reader in epoll when the daemon died exited 0, want an error")
	} else if !strings.Contains(goErr.String(), "not connected") && !strings.Contains(goErr.String(), "connection abort") {
		t.Errorf("Go reader when the daemon died: %v %q, want ENOTCONN or ECONNABORTED", err, goErr.String())
	}
	idle.want("write w "+q("into the void"), "ENOTCONN")
	idle.close()

	ch2 := d2.channel("again")
	out := sh(t, map[string]string{"CH": ch2}, `echo back > "$CH/msg"; head -n1 "$CH/msg"`)
	if out != "back\n" {
		t.Errorf("after the remount: %q", out)
	}
}

// Helpers shared by the robustness tests (faults, bad input, permissions,
// containers, soak).

// goroutineSlack is how many goroutines more than at the start a daemon
// may have after a test has come and gone: timers and the like, not one
// per client or channel.
const goroutineSlack = 2

func q(s string) string { return strconv.Quote(s) }

// clientGORACE spares a race-built client the race runtime's second of
// sleep at exit: tests start hundreds of them.
const clientGORACE = "GORACE=atexit_sleep_ms=0"

func soakclient(t *testing.T) string {
	return goBinary(t, "github.com/ipcfs/ipcfs/tests/soakclient")
}

// prober is a running `soakclient probe`: a child process that makes the
// system calls it is told, one command a line, and answers each with a
// line (see tests/soakclient/main.go).
type prober struct {
	*child
	t *testing.T
}

// startProbe starts a probe; with a prefix (setpriv …) that runs it.
func startProbe(t *testing.T, prefix ...string) *prober {
	t.Helper()
	bin := soakclient(t)
	return startProbeCmd(t, bin, append(append([]string{}, prefix...), bin, "probe"))
}

// startProbeCmd starts argv, which runs the probe bin (its path is in the
// environment as PROBE, for scripts that end in exec "$PROBE" probe).
func startProbeCmd(t *testing.T, bin string, argv []string) *prober {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "PROBE="+bin, clientGORACE)
	p := &prober{child: startChild(t, "probe", cmd), t: t}
	t.Cleanup(p.close)
	return p
}

// send gives the probe a command without waiting for its answer.
func (p *prober) send(cmd string) {
	p.t.Helper()
	p.sendLine(cmd)
}

// result waits for the answer to the oldest command not yet answered.
func (p *prober) result() string {
	p.t.Helper()
	return p.readLine("answer")
}

// do runs a command and returns its answer.
func (p *prober) do(cmd string) string {
	p.t.Helper()
	p.send(cmd)
	return p.result()
}

// want runs a command and fails the test unless the answer is want.
func (p *prober) want(cmd, want string) {
	p.t.Helper()
	if got := p.do(cmd); got != want {
		p.t.Errorf("%s: got %s, want %s", cmd, got, want)
	}
}

// kill SIGKILLs the probe and waits for it: it must die, not hang. A
// process killed while its request waits in the daemon dies only once the
// daemon answers (the kernel waits it out, in state D); if it never does,
// the test kills the daemon to free it, and fails.
func (p *prober) kill(d *daemon) {
	p.t.Helper()
	exited, err := p.killWait()
	if !exited {
		d.cmd.Process.Kill()
		unmountAtEnd(p.t, d)
		p.waitExit(hangTimeout)
		p.t.Fatalf("a SIGKILLed client was still waiting in the daemon after %v: its interrupted request was never answered", hangTimeout)
	}
	if err == nil || !strings.Contains(err.Error(), "killed") {
		p.t.Errorf("SIGKILLed probe: %v, want killed", err)
	}
}

// close ends the probe (closing its files) and waits for it. A probe
// still blocked in a system call is killed; one that cannot even be killed
// (waiting in a daemon that ignores interrupts) is reported and left.
func (p *prober) close() {
	p.drain()
	if exited, _ := p.waitExit(0); exited {
		return
	}
	if p.t.Failed() {
		// It may be blocked for good; do not wait for it to end by itself.
		if exited, _ := p.killWait(); !exited {
			p.t.Errorf("a probe could not be killed within %v (state D: a request the daemon never answers)", hangTimeout)
		}
		return
	}
	if exited, err := p.endInput(); exited {
		if err != nil && !p.t.Failed() {
			p.t.Errorf("probe: %v\n%s", err, p.stderr.String())
		}
		return
	}
	if exited, _ := p.killWait(); exited {
		p.t.Errorf("probe still busy %v after its input ended (killed it)", hangTimeout)
	} else {
		p.t.Errorf("probe still busy %v after its input ended, and SIGKILL did not end it (state D: a request the daemon never answers)", hangTimeout)
	}
}

// daemonStats asks the daemon for a stats line (SIGUSR1) and returns its
// numbers.
func daemonStats(t *testing.T, d *daemon) map[string]float64 {
	t.Helper()
	isStats := func(r map[string]any) bool { return r["msg"] == "stats" }
	before := 0
	for _, r := range d.logLines() {
		if isStats(r) {
			before++
		}
	}
	if err := d.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("SIGUSR1: %v", err)
	}
	deadline := time.Now().Add(hangTimeout)
	for time.Now().Before(deadline) {
		var recs []map[string]any
		for _, r := range d.logLines() {
			if isStats(r) {
				recs = append(recs, r)
			}
		}
		if len(recs) > before {
			st := map[string]float64{}
			for k, v := range recs[len(recs)-1] {
				if f, ok := v.(float64); ok {
					st[k] = f
				}
			}
			for _, k := range []string{"goroutines", "heap_alloc", "heap_objects", "channels", "removed_channels", "handles", "parked_requests"} {
				if _, ok := st[k]; !ok {
					t.Fatalf("stats line without %s: %v", k, recs[len(recs)-1])
				}
			}
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no stats line within %v of SIGUSR1; log:\n%s", hangTimeout, d.logText())
	return nil
}

// checkDaemonLog fails the test if a daemon that has exited logged a
// panic or a data race (stop does it for daemons it ends itself).
func checkDaemonLog(t *testing.T, d *daemon) {
	t.Helper()
	for _, bad := range []string{"WARNING: DATA RACE", "BUG: panic", "panic:"} {
		if strings.Contains(d.logText(), bad) {
			t.Errorf("daemon log contains %q:\n%s", bad, d.logText())
		}
	}
}

// mountCount counts the mounts on path in this process's namespace.
func mountCount(t *testing.T, path string) int {
	t.Helper()
	all, err := mountinfo.All()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range all {
		if m.MountPoint == path {
			n++
		}
	}
	return n
}

func isMounted(t *testing.T, path string) bool { return mountCount(t, path) > 0 }

// unmountAtEnd lazily unmounts a daemon's mountpoint when the test ends,
// for daemons the test ended itself: stop leaves the mount of a daemon
// that has already exited, dead or not.
func unmountAtEnd(t *testing.T, d *daemon) {
	t.Cleanup(func() { runErr("fusermount3", "-u", "-z", d.mnt) })
}

// logCount counts the daemon's log records for which match is true.
func logCount(d *daemon, match func(map[string]any) bool) int {
	n := 0
	for _, r := range d.logLines() {
		if match(r) {
			n++
		}
	}
	return n
}
