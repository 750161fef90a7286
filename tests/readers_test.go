package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readersTests is the conformance map of the spec's msg rule 8 ("every way
// of reading", issue 8): msg, ctl and status read by the real tools and
// through the real kernel paths other than read(2) — sendfile, splice,
// copy_file_range, readahead, fadvise, mmap, io_uring, Linux AIO, FIONREAD,
// buffered stdio. Each way either behaves as read(2) does (each message
// once, blocking until one comes) or fails at once with an errno and takes
// nothing; no process is left in uninterruptible sleep.
var readersTests = map[string]func(t *testing.T, d *daemon){
	"busybox cat msg streams every message until hangup": testBusyboxCatMsg,
	"busybox cat status and ctl":                         testBusyboxCatText,
	"sendfile of status and ctl":                         testSendfileText,
	"busybox cat blocked: a writer never waits in D":     testBusyboxCatDeadlock,
	"Python shutil.copyfile of status, ctl and msg":      testPyCopyfile,
	"Go io.Copy to TCP from msg and status":              testGoCopyTCP,
	"Go io.Copy to a file from msg":                      testGoCopyFile,
	"sendfile and splice from msg":                       testSendfileSplice,
	"sendfile and splice block like read":                testSendfileBlocks,
	"copy_file_range from msg":                           testCopyFileRange,
	"readahead and fadvise take nothing":                 testReadahead,
	"mmap of msg takes nothing":                          testMmapMsg,
	"liburing read loop, offset -1":                      func(t *testing.T, d *daemon) { testUring(t, d, "cur") },
	"liburing read loop, explicit offsets":               func(t *testing.T, d *daemon) { testUring(t, d, "explicit") },
	"liburing read loop, offset -1, IOSQE_ASYNC":         func(t *testing.T, d *daemon) { testUring(t, d, "cur", "async") },
	"liburing read loop, explicit offsets, IOSQE_ASYNC":  func(t *testing.T, d *daemon) { testUring(t, d, "explicit", "async") },
	"liburing short reads continue the message":          testUringShortReads,
	"liburing writes":                                    testUringWrite,
	"liburing reader SIGKILLed while waiting":            testUringKill,
	"io_submit read blocks in the submitter":             testAIORead,
	"io_submit read is interruptible":                    testAIOReadSignal,
	"io_submit read of a SIGKILLed submitter":            testAIOReadKill,
	"io_submit write to a full queue":                    testAIOWrite,
	"tail -f prints new messages once":                   testTailF,
	"FIONREAD takes nothing":                             testFIONREAD,
	"buffered stdio: json.dump against one os.write":     testBufferedStdio,
}

func TestReaders(t *testing.T) { runMounted(t, readersTests) }

// Helpers of the readers tests.

// readtool starts a `readtool probe` (tests/clients/readtool.c).
func readtool(t *testing.T, d *daemon) *prober {
	t.Helper()
	bin := cBinary(t, "clients/readtool.c")
	p := startProbeCmd(t, bin, []string{bin, "probe"})
	abortOnFailure(t, d)
	return p
}

// uringtool returns tests/clients/uringtool.c built against liburing
// (liburing-dev, which scripts/setup.sh installs).
func uringtool(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("no C compiler (cc)")
	}
	p, err := buildOnce("clients/uringtool.c", func(out string) *exec.Cmd {
		return exec.Command("cc", "-O2", "-Wall", "-Werror", "-o", out, "clients/uringtool.c", "-luring")
	})
	if err != nil {
		t.Fatalf("%v(scripts/setup.sh installs liburing-dev)", err)
	}
	return p
}

// tool returns the path of an installed program scripts/setup.sh provides.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("no %s on PATH: scripts/setup.sh installs it", name)
	}
	return p
}

// abortOnFailure registers a cleanup that, if the test has failed, kills
// the daemon (and lazily unmounts) before the cleanups registered earlier
// run: a client stuck in a request the daemon never answers — or behind a
// page lock such a request holds — is freed by the aborted connection
// instead of holding the test, and the machine, for good.
func abortOnFailure(t *testing.T, d *daemon) {
	t.Cleanup(func() {
		if t.Failed() && !d.exited {
			d.signal(syscall.SIGKILL)
			exec.Command("fusermount3", "-u", "-z", d.mnt).Run()
		}
	})
}

// proc is a started command whose output the test watches.
type proc struct {
	cmd      *exec.Cmd
	out, err lockedBuffer
	done     chan struct{} // closed when it has exited
	exitErr  error         // valid once done is closed
}

// startProc starts a command; it is killed when the test ends if it is
// still running (after the daemon, if the test failed).
func startProc(t *testing.T, d *daemon, name string, args ...string) *proc {
	t.Helper()
	c := &proc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.err
	c.cmd.Env = append(os.Environ(), clientGORACE)
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		c.exitErr = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(hangTimeout):
			t.Errorf("%s %q could not be killed within %v (%s)", name, args, hangTimeout, dState(c.cmd.Process.Pid))
		}
	})
	abortOnFailure(t, d)
	return c
}

func (c *proc) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// wait waits for the command to exit and returns its error.
func (c *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-c.done:
		return c.exitErr
	case <-time.After(hangTimeout):
		t.Fatalf("%s did not exit within %v (a hang; %s); stdout %q stderr %q",
			c.cmd.Path, hangTimeout, dState(c.cmd.Process.Pid), c.out.String(), c.err.String())
	}
	return nil
}

// waitUntil polls cond until it holds, failing the test after hangTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (a hang)", what, hangTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dState describes the threads of process pid that are in uninterruptible
// sleep (state D in field 3 of /proc/PID/task/TID/stat) and where, or is ""
// if none is.
func dState(pid int) string {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var ds []string
	for _, task := range tasks {
		dir := fmt.Sprintf("/proc/%d/task/%s/", pid, task.Name())
		stat, err := os.ReadFile(dir + "stat")
		if err != nil {
			continue
		}
		_, rest, _ := strings.Cut(string(stat), ") ")
		if strings.HasPrefix(rest, "D") {
			wchan, _ := os.ReadFile(dir + "wchan")
			ds = append(ds, fmt.Sprintf("thread %s in state D at %s", task.Name(), wchan))
		}
	}
	return strings.Join(ds, ", ")
}

// waitReading waits until c waits in the daemon for a message of the
// channel ch (blocked_readers 1), failing at once if c exits instead.
func waitReading(t *testing.T, ch string, c *proc, who string) {
	t.Helper()
	waitUntil(t, who+" waiting for a message", func() bool {
		return readStatus(t, ch)["blocked_readers"] == "1" || c.exited()
	})
	if c.exited() {
		t.Fatalf("%s exited instead of waiting for a message: %v %s; printed %q",
			who, c.exitErr, c.err.String(), abbrev(c.out.String()))
	}
}

// waitNotStuck waits for c to exit and returns its error. A thread of c
// seen in uninterruptible sleep (state D) at one of the kernel functions
// named in stuckAt — where issue 8 saw processes stuck for good, such as
// a writer in __folio_lock — fails the test at once; a D state elsewhere
// may be brief (exit_aio always waits out an RCU grace period), so it fails
// the test only if c has not exited within hangTimeout, and is reported.
func waitNotStuck(t *testing.T, c *proc, who string, stuckAt ...string) error {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	var seen string
	for !c.exited() {
		if ds := dState(c.cmd.Process.Pid); ds != "" {
			for _, at := range stuckAt {
				if strings.Contains(ds, " at "+at) {
					t.Fatalf("%s: %s (SIGKILL cannot end it)", who, ds)
				}
			}
			seen = ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not finish within %v (a hang): now %q, last seen in D: %q",
				who, hangTimeout, dState(c.cmd.Process.Pid), seen)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return c.exitErr
}

// okData parses a probe answer `ok "DATA"` or `ok N "DATA"`.
func okData(ans string) (data string, ok bool) {
	rest, found := strings.CutPrefix(ans, "ok ")
	if !found {
		return "", false
	}
	if i := strings.IndexByte(rest, '"'); i > 0 {
		rest = rest[i:]
	}
	s, err := strconv.Unquote(rest)
	return s, err == nil
}

// counters returns the counters of a channel that change with reads.
func counters(t *testing.T, ch string) string {
	t.Helper()
	st := readStatus(t, ch)
	return fmt.Sprintf("messages %s sent %s received %s truncated %s blocked_readers %s",
		st["messages"], st["sent"], st["received"], st["truncated"], st["blocked_readers"])
}

// wantQueue checks counters against the expected values.
func wantQueue(t *testing.T, ch, when string, messages, sent, received, truncated int) {
	t.Helper()
	want := fmt.Sprintf("messages %d sent %d received %d truncated %d blocked_readers 0", messages, sent, received, truncated)
	if got := counters(t, ch); got != want {
		t.Errorf("%s: status %s, want %s", when, got, want)
	}
}

// writeMsgs writes each message with one write(2), from another process.
func writeMsgs(t *testing.T, msg string, msgs ...string) {
	t.Helper()
	run(t, bins.goclient, append([]string{"write", msg}, msgs...)...)
}

// drainNonblock reads every queued message of msg with O_NONBLOCK reads
// from a fresh open file of probe p (so a message a test expects but that
// is gone shows as EAGAIN, not as a hang) and returns them.
func drainNonblock(t *testing.T, p *prober, msg string) []string {
	t.Helper()
	p.want("open drain "+q(msg)+" r,nonblock", "ok")
	var got []string
	for {
		ans := p.do("read drain 1048576")
		data, ok := okData(ans)
		if !ok {
			if ans != "EAGAIN" {
				t.Errorf("O_NONBLOCK read of the queue: %s", ans)
			}
			break
		}
		got = append(got, data)
	}
	p.want("close drain", "ok")
	return got
}

// bigMessage is a 10,000-byte message (issue 8: busybox cat printed 7 of them).
var bigMessage = strings.Repeat("0123456789", 999) + "9876543210"[:9] + "\n"

// busybox cat uses sendfile(2) (bb_copyfd_eof) and falls back to read(2)
// when sendfile fails; it stops at the first 0.
func testBusyboxCatMsg(t *testing.T, d *daemon) {
	bb := tool(t, "busybox")
	msgs := []string{"one\n", "two\n", bigMessage, "last\n"}
	want := strings.Join(msgs, "")

	// Messages queued before cat starts.
	ch := d.channel("queued")
	msg := filepath.Join(ch, "msg")
	writeMsgs(t, msg, msgs...)
	writeCtl(t, ch, "hangup")
	cat := startProc(t, d, bb, "cat", msg)
	if err := cat.wait(t); err != nil {
		t.Errorf("busybox cat: %v %s", err, cat.err.String())
	}
	if got := cat.out.String(); got != want {
		t.Errorf("busybox cat of 4 queued messages printed %d bytes %q, want %d bytes", len(got), abbrev(got), len(want))
	}
	wantQueue(t, ch, "after busybox cat", 0, 4, 4, 0)

	// cat waiting first, the messages coming one by one.
	ch = d.channel("streamed")
	msg = filepath.Join(ch, "msg")
	cat = startProc(t, d, bb, "cat", msg)
	waitReading(t, ch, cat, "busybox cat")
	for i, m := range msgs {
		writeMsgs(t, msg, m)
		so := strings.Join(msgs[:i+1], "")
		waitUntil(t, fmt.Sprintf("busybox cat printing message %d", i+1), func() bool {
			return cat.out.String() == so || cat.exited()
		})
		if cat.exited() {
			t.Fatalf("busybox cat exited after %d messages (%v), printed %q", i+1, cat.exitErr, abbrev(cat.out.String()))
		}
	}
	writeCtl(t, ch, "hangup")
	if err := cat.wait(t); err != nil {
		t.Errorf("busybox cat at hangup: %v %s", err, cat.err.String())
	}
	if got := cat.out.String(); got != want {
		t.Errorf("busybox cat of 4 streamed messages printed %q", abbrev(got))
	}
	wantQueue(t, ch, "after busybox cat", 0, 4, 4, 0)
}

// abbrev shortens long output for a failure message.
func abbrev(s string) string {
	if len(s) <= 200 {
		return s
	}
	return fmt.Sprintf("%s…(%d bytes)…%s", s[:80], len(s)-160, s[len(s)-80:])
}

func testBusyboxCatText(t *testing.T, d *daemon) {
	bb := tool(t, "busybox")
	ch := d.channel("text")
	writeMsgs(t, filepath.Join(ch, "msg"), "a", "bb", "ccc")
	writeCtl(t, ch, "queue-msgs 100\nqueue-bytes 64K")
	for _, name := range []string{"status", "ctl"} {
		path := filepath.Join(ch, name)
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			t.Fatalf("%s reads as empty through read(2)", name)
		}
		out, errOut, err := runErr(bb, "cat", path)
		if err != nil || errOut != "" {
			t.Errorf("busybox cat %s: %v %s", name, err, errOut)
		}
		if out != string(want) {
			t.Errorf("busybox cat %s printed %q, want %q", name, out, want)
		}
	}
}

// testSendfileText: sendfile of ctl and status (issue 8: they read as
// empty through sendfile) gives their content, or fails with EINVAL so
// that a tool falls back to read(2); never an empty success.
func testSendfileText(t *testing.T, d *daemon) {
	ch := d.channel("text")
	writeMsgs(t, filepath.Join(ch, "msg"), "a", "bb")
	p := readtool(t, d)
	for _, name := range []string{"status", "ctl"} {
		path := filepath.Join(ch, name)
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p.want("open f "+q(path)+" r", "ok")
		for _, call := range []string{"sendfile f 65536 0", "splice f 65536 0"} {
			ans := p.do(call)
			if data, ok := okData(ans); ans != "EINVAL" && (!ok || data != string(want)) {
				t.Errorf("%s of %s: %s, want EINVAL or %q", call, name, ans, want)
			}
		}
		p.want("close f", "ok")
	}
}

// The deadlock: busybox cat's sendfile held a locked page-cache
// folio while its READ waited in the daemon, and the next writer waited for
// that folio in state D, unkillable, its message never arriving.
func testBusyboxCatDeadlock(t *testing.T, d *daemon) {
	bb := tool(t, "busybox")
	ch := d.channel("d")
	env := map[string]string{"CH": ch}
	sh(t, env, `echo primer > "$CH/msg"; echo flush > "$CH/ctl"`)
	cat := startProc(t, d, bb, "cat", filepath.Join(ch, "msg"))
	waitReading(t, ch, cat, "busybox cat")
	writer := startProc(t, d, "sh", "-c", "echo late > "+shQuote(filepath.Join(ch, "msg")))
	if err := waitNotStuck(t, writer, "echo late > msg with busybox cat waiting", "__folio_lock", "folio_wait"); err != nil {
		t.Errorf("echo late > msg: %v %s", err, writer.err.String())
	}
	waitUntil(t, "busybox cat printing the late message", func() bool {
		return cat.out.String() == "late\n" || cat.exited()
	})
	writeCtl(t, ch, "hangup")
	if err := cat.wait(t); err != nil {
		t.Errorf("busybox cat: %v %s", err, cat.err.String())
	}
	if got := cat.out.String(); got != "late\n" {
		t.Errorf("busybox cat printed %q, want \"late\\n\"", got)
	}
	wantQueue(t, ch, "after the late message", 0, 2, 1, 0)
}

// shQuote quotes s for sh.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// shutil.copyfile uses os.sendfile on Linux and falls back to read/write
// when the first sendfile fails having copied nothing.
func testPyCopyfile(t *testing.T, d *daemon) {
	tool(t, "python3")
	ch := d.channel("py")
	msg := filepath.Join(ch, "msg")
	writeMsgs(t, msg, "x", "yy")
	tmp := t.TempDir()
	copyfile := func(src, dst string) string {
		t.Helper()
		run(t, "python3", "-c", "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])", src, dst)
		b, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, name := range []string{"status", "ctl"} {
		want, err := os.ReadFile(filepath.Join(ch, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := copyfile(filepath.Join(ch, name), filepath.Join(tmp, name)); got != string(want) {
			t.Errorf("shutil.copyfile of %s gave %q, want %q", name, got, want)
		}
	}
	writeMsgs(t, msg, bigMessage, "end")
	writeCtl(t, ch, "hangup")
	if got, want := copyfile(msg, filepath.Join(tmp, "msg")), "x"+"yy"+bigMessage+"end"; got != want {
		t.Errorf("shutil.copyfile of a hung-up msg gave %q, want %q", abbrev(got), abbrev(want))
	}
	wantQueue(t, ch, "after shutil.copyfile of msg", 0, 4, 4, 0)
}

// tcpSink listens on loopback and returns the address and a function that
// returns everything the first connection sent, up to its close.
func tcpSink(t *testing.T) (addr string, received func() string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * hangTimeout))
		b, err := io.ReadAll(c)
		if err != nil {
			b = append(b, " read: "+err.Error()...)
		}
		got <- string(b)
	}()
	return ln.Addr().String(), func() string {
		select {
		case s := <-got:
			return s
		case <-time.After(2 * hangTimeout):
			t.Fatalf("nothing came over TCP within %v", 2*hangTimeout)
		}
		return ""
	}
}

// Go's io.Copy from an *os.File to a TCP connection sends with sendfile(2)
// and falls back to Read/Write when sendfile fails having sent nothing.
func testGoCopyTCP(t *testing.T, d *daemon) {
	cc := goBinary(t, "github.com/ipcfs/ipcfs/tests/copyclient")
	ch := d.channel("go")
	msg := filepath.Join(ch, "msg")

	want, err := os.ReadFile(filepath.Join(ch, "status"))
	if err != nil {
		t.Fatal(err)
	}
	addr, received := tcpSink(t)
	run(t, cc, "tcp", filepath.Join(ch, "status"), addr)
	if got := received(); got != string(want) {
		t.Errorf("io.Copy(tcpConn, status) sent %q, want %q", got, want)
	}

	// Queued and hung up before the copy.
	msgs := []string{"first", bigMessage, "third"}
	writeMsgs(t, msg, msgs...)
	writeCtl(t, ch, "hangup")
	addr, received = tcpSink(t)
	out := run(t, cc, "tcp", msg, addr)
	if got, want := received(), strings.Join(msgs, ""); got != want {
		t.Errorf("io.Copy(tcpConn, msg) sent %q, want %q", abbrev(got), abbrev(want))
	}
	if want := fmt.Sprintf("copied %d\n", len(strings.Join(msgs, ""))); out != want {
		t.Errorf("copyclient: %q, want %q", out, want)
	}
	wantQueue(t, ch, "after io.Copy of 3 queued messages", 0, 3, 3, 0)

	// The copy waiting first, the messages coming after.
	ch = d.channel("go-streamed")
	msg = filepath.Join(ch, "msg")
	addr, received = tcpSink(t)
	c := startProc(t, d, cc, "tcp", msg, addr)
	// A Go reader waits in epoll, not in the daemon: it has msg open.
	waitUntil(t, "io.Copy opening msg", func() bool {
		return readStatus(t, ch)["readers"] == "1" || c.exited()
	})
	for _, m := range msgs {
		writeMsgs(t, msg, m)
	}
	waitUntil(t, "io.Copy taking the 3 messages", func() bool {
		return readStatus(t, ch)["messages"] == "0" || c.exited()
	})
	if c.exited() {
		t.Fatalf("io.Copy(tcpConn, msg) ended before hangup: %v %s %s; TCP got %q",
			c.exitErr, c.out.String(), c.err.String(), abbrev(received()))
	}
	writeCtl(t, ch, "hangup")
	if err := c.wait(t); err != nil {
		t.Errorf("copyclient: %v %s", err, c.err.String())
	}
	if got, want := received(), strings.Join(msgs, ""); got != want {
		t.Errorf("io.Copy(tcpConn, msg) of streamed messages sent %q, want %q", abbrev(got), abbrev(want))
	}
	wantQueue(t, ch, "after io.Copy of 3 streamed messages", 0, 3, 3, 0)
}

// Go's io.Copy to a regular file tries copy_file_range and splice first.
func testGoCopyFile(t *testing.T, d *daemon) {
	cc := goBinary(t, "github.com/ipcfs/ipcfs/tests/copyclient")
	ch := d.channel("gofile")
	msg := filepath.Join(ch, "msg")
	msgs := []string{"first", bigMessage, "third"}
	writeMsgs(t, msg, msgs...)
	writeCtl(t, ch, "hangup")
	dst := filepath.Join(t.TempDir(), "copy")
	run(t, cc, "file", msg, dst)
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(msgs, ""); string(b) != want {
		t.Errorf("io.Copy(file, msg) wrote %q, want %q", abbrev(string(b)), abbrev(want))
	}
	wantQueue(t, ch, "after io.Copy to a file", 0, 3, 3, 0)
}

// readerSetups are the two ways a reader's open file of msg meets queued
// messages: written by another process, or written through the reader's
// own O_RDWR file first (which, issue 8 says, raised the kernel's cached
// size so that page-cache reads reached the daemon).
var readerSetups = []string{"written by another process", "written through the same file"}

// setupReader opens msg as FD r in p with the messages M1 and M2 queued,
// the way setup says.
func setupReader(t *testing.T, p *prober, msg, setup string) {
	t.Helper()
	if setup == readerSetups[0] {
		writeMsgs(t, msg, "M1", "M2")
		p.want("open r "+q(msg)+" r", "ok")
		return
	}
	p.want("open r "+q(msg)+" rw", "ok")
	p.want(`write r "M1"`, "ok 2")
	p.want(`write r "M2"`, "ok 2")
}

// testSendfileSplice calls sendfile or splice twice with M1 and M2 queued:
// both fail with EINVAL, taking nothing, or they behave as read(2) does and
// return M1, then M2. Each subtest mounts a daemon of its own: a failed one
// kills its daemon (abortOnFailure).
func testSendfileSplice(t *testing.T, _ *daemon) {
	for _, setup := range readerSetups {
		for _, fn := range []string{"sendfile", "splice"} {
			for _, explicit := range []bool{false, true} {
				name := fn + " at the file position, " + setup
				if explicit {
					name = fn + " at explicit offsets, " + setup
				}
				t.Run(name, func(t *testing.T) {
					d := mount(t)
					ch := d.channel("c")
					msg := filepath.Join(ch, "msg")
					p := readtool(t, d)
					setupReader(t, p, msg, setup)
					call := func(off int) string {
						if explicit {
							return fmt.Sprintf("%s r 65536 %d", fn, off)
						}
						return fn + " r 65536"
					}
					first := p.do(call(0))
					d1, ok1 := okData(first)
					second := p.do(call(len(d1)))
					d2, ok2 := okData(second)
					switch {
					case first == "EINVAL" && second == "EINVAL":
						wantQueue(t, ch, "after two calls failed with EINVAL", 2, 2, 0, 0)
						if got := drainNonblock(t, p, msg); !slices.Equal(got, []string{"M1", "M2"}) {
							t.Errorf("after two calls failed with EINVAL the queue held %q, want M1 and M2", got)
						}
					case ok1 && d1 == "M1" && ok2 && d2 == "M2":
						wantQueue(t, ch, "after two calls returned M1 and M2", 0, 2, 2, 0)
					default:
						t.Errorf("%s, then %s, with M1 and M2 queued: %s, then %s; want EINVAL twice, or M1 then M2 (status %s)",
							call(0), call(len(d1)), first, second, counters(t, ch))
						t.Logf("the queue then held %q", drainNonblock(t, p, msg))
					}
				})
			}
		}
	}
}

// testSendfileBlocks: with an empty queue, sendfile and splice either fail
// at once with EINVAL or wait, as read(2) does, and return the message that
// comes — never 0 (end of file) while the channel is not hung up.
func testSendfileBlocks(t *testing.T, d *daemon) {
	for i, call := range []string{"sendfile r 65536", "splice r 65536"} {
		ch := d.channel(fmt.Sprintf("empty%d", i))
		msg := filepath.Join(ch, "msg")
		p := readtool(t, d)
		p.want("open r "+q(msg)+" r", "ok")
		p.send(call)
		var ans string
		waitUntil(t, call+" answering or waiting in the daemon", func() bool {
			select {
			case ans = <-p.lines:
				return true
			default:
			}
			return readStatus(t, ch)["blocked_readers"] == "1"
		})
		if ans == "" { // waiting, as read(2) would
			writeMsgs(t, msg, "came later")
			ans = p.result()
			if data, ok := okData(ans); !ok || data != "came later" {
				t.Errorf("%s waiting on an empty queue then got %s, want the message", call, ans)
			}
			wantQueue(t, ch, "after "+call, 0, 1, 1, 0)
			continue
		}
		if ans != "EINVAL" {
			t.Errorf("%s of an empty queue: %s at once, want EINVAL or a wait for a message", call, ans)
		}
		writeMsgs(t, msg, "still here")
		if got := drainNonblock(t, p, msg); !slices.Equal(got, []string{"still here"}) {
			t.Errorf("after %s failed the queue held %q", call, got)
		}
	}
}

// copy_file_range from msg: to another channel's msg (the same mount:
// FUSE_COPY_FILE_RANGE, else the kernel's splice fallback) and to a file
// on another filesystem.
func testCopyFileRange(t *testing.T, _ *daemon) {
	for _, setup := range readerSetups {
		for _, dest := range []string{"msg of another channel", "a file elsewhere"} {
			t.Run(setup+", to "+dest, func(t *testing.T) {
				d := mount(t)
				src := d.channel("src")
				p := readtool(t, d)
				setupReader(t, p, filepath.Join(src, "msg"), setup)
				var dst string
				if dest == "a file elsewhere" {
					dst = filepath.Join(t.TempDir(), "copy")
					p.want("open dst "+q(dst)+" rw,creat", "ok")
				} else {
					dst = filepath.Join(d.channel("dst"), "msg")
					p.want("open dst "+q(dst)+" w", "ok")
				}
				ans := p.do("cfr r dst 65536")
				t.Logf("copy_file_range with M1 and M2 queued: %s", ans)
				switch ans {
				case "EINVAL", "EXDEV", "EOPNOTSUPP":
					wantQueue(t, src, "copy_file_range failed with "+ans, 2, 2, 0, 0)
					if got := drainNonblock(t, p, filepath.Join(src, "msg")); !slices.Equal(got, []string{"M1", "M2"}) {
						t.Errorf("after copy_file_range failed with %s the queue held %q, want M1 and M2", ans, got)
					}
					return
				case "ok 2":
				default:
					t.Fatalf("copy_file_range of msg with M1 and M2 queued: %s, want EINVAL, EXDEV, EOPNOTSUPP or 2 (M1); status %s",
						ans, counters(t, src))
				}
				wantQueue(t, src, "copy_file_range copied M1", 1, 2, 1, 0)
				var got []string
				if dest == "a file elsewhere" {
					b, _ := os.ReadFile(dst)
					got = []string{string(b)}
				} else {
					got = drainNonblock(t, p, dst)
				}
				if !slices.Equal(got, []string{"M1"}) {
					t.Errorf("copy_file_range delivered %q, want M1 once", got)
				}
			})
		}
	}
}

// readahead(2) and posix_fadvise(WILLNEED) must not take a message into
// the page cache (issue 8: one consumed a message counted nowhere).
func testReadahead(t *testing.T, d *daemon) {
	for i, setup := range readerSetups {
		ch := d.channel(fmt.Sprintf("ra%d", i))
		p := readtool(t, d)
		setupReader(t, p, filepath.Join(ch, "msg"), setup)
		for _, call := range []string{"readahead r 0 65536", "fadvise r 0 65536"} {
			ans := p.do(call)
			t.Logf("%s (%s): %s", call, setup, ans)
			if ans != "ok" && ans != "EINVAL" {
				t.Errorf("%s: %s, want ok or EINVAL", call, ans)
			}
		}
		// Reads through the same file and a fresh one get both messages.
		p.want("read r 65536", `ok "M1"`)
		if got := drainNonblock(t, p, filepath.Join(ch, "msg")); !slices.Equal(got, []string{"M2"}) {
			t.Errorf("after readahead and fadvise (%s) the queue held %q, want M2", setup, got)
		}
		wantQueue(t, ch, "after readahead, fadvise and two reads", 0, 2, 2, 0)
	}
}

// mmap of msg: MAP_SHARED is refused (direct I/O); MAP_PRIVATE maps, but
// its page faults must not take a message (SIGBUS, or an errno at mmap).
func testMmapMsg(t *testing.T, d *daemon) {
	for i, setup := range readerSetups {
		ch := d.channel(fmt.Sprintf("mm%d", i))
		p := readtool(t, d)
		setupReader(t, p, filepath.Join(ch, "msg"), setup)
		p.want("mmap r shared 4096", "ENODEV")
		ans := p.do("mmap r private 4096")
		t.Logf("MAP_PRIVATE of msg, first byte loaded (%s): %s", setup, ans)
		if strings.HasPrefix(ans, "ok") || strings.HasPrefix(ans, "error") {
			t.Errorf("mmap(MAP_PRIVATE) of msg and a load (%s): %s, want SIGBUS or an errno", setup, ans)
		}
		wantQueue(t, ch, "after mmap", 2, 2, 0, 0)
		if got := drainNonblock(t, p, filepath.Join(ch, "msg")); !slices.Equal(got, []string{"M1", "M2"}) {
			t.Errorf("after mmap (%s) the queue held %q, want M1 and M2", setup, got)
		}
	}
}

// testUring: a liburing loop of reads (one SQE at a time) with offset -1
// (mode "cur") or with offset += n ("explicit") waits for each message
// and gets each once, in order. (On this kernel an io_uring read of an
// empty msg does not wait in the daemon: msg supports poll, so io_uring
// arms a poll for POLLIN and issues the read from the submitting task when
// it fires — no io-wq worker, no blocked_readers. So the test checks what
// the reader printed after each message, not where it waits.)
func testUring(t *testing.T, d *daemon, mode string, async ...string) {
	ut := uringtool(t)
	ch := d.channel("uring")
	msg := filepath.Join(ch, "msg")
	msgs := []string{"m1", "message two", bigMessage, "m4", "the fifth"}
	r := startProc(t, d, ut, append([]string{"read", msg, strconv.Itoa(len(msgs)), mode, "65536"}, async...)...)
	mode = strings.TrimSpace(mode + " " + strings.Join(async, ""))
	waitUntil(t, "the io_uring reader opening msg", func() bool {
		return readStatus(t, ch)["readers"] == "1" || r.exited()
	})
	for i, m := range msgs {
		if r.exited() || r.out.String() != cRecords(msgs[:i]) {
			t.Fatalf("before message %d was written the io_uring reader (%s) printed %q (exited: %v %v %s), want %q",
				i+1, mode, abbrev(r.out.String()), r.exited(), r.exitErr, r.err.String(), abbrev(cRecords(msgs[:i])))
		}
		writeMsgs(t, msg, m)
		deadline := time.Now().Add(hangTimeout)
		for len(r.out.String()) < len(cRecords(msgs[:i+1])) && !r.exited() {
			if time.Now().After(deadline) {
				t.Fatalf("the io_uring reader (%s) printed nothing for message %d within %v (a hang): printed %q, status %s",
					mode, i+1, hangTimeout, abbrev(r.out.String()), counters(t, ch))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := r.wait(t); err != nil {
		t.Errorf("uringtool read: %v %s", err, r.err.String())
	}
	if got := cMessages(t, r.out.String()); !slices.Equal(got, msgs) {
		t.Errorf("the io_uring reader (%s) got %q, want %q", mode, got, msgs)
	}
	wantQueue(t, ch, "after the io_uring reader", 0, 5, 5, 0)
}

// cRecords is what msgtool and uringtool print for msgs.
func cRecords(msgs []string) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%d:%s\n", len(m), m)
	}
	return b.String()
}

// testUringShortReads: io_uring reads with a buffer shorter than the
// message get the message in pieces, then the next message — inline or
// from task work (the default), or in io-wq workers (IOSQE_ASYNC).
func testUringShortReads(t *testing.T, d *daemon) {
	ut := uringtool(t)
	for _, mode := range []string{"cur", "explicit"} {
		for _, async := range []string{"", "async"} {
			ch := d.channel("short-" + mode + async)
			msg := filepath.Join(ch, "msg")
			writeMsgs(t, msg, "0123456789", "next")
			out := run(t, ut, "read", msg, "4", mode, "4", async)
			if got, want := cMessages(t, out), []string{"0123", "4567", "89", "next"}; !slices.Equal(got, want) {
				t.Errorf("io_uring reads of 4 bytes (%s %s) got %q, want %q", mode, async, got, want)
			}
			wantQueue(t, ch, "after the short io_uring reads", 0, 2, 2, 0)
		}
	}
}

func testUringWrite(t *testing.T, d *daemon) {
	ut := uringtool(t)
	ch := d.channel("uw")
	msg := filepath.Join(ch, "msg")
	msgs := []string{"u1", "uring two", "u3"}
	if out := run(t, ut, append([]string{"write", msg}, msgs...)...); out != "2\n9\n2\n" {
		t.Errorf("io_uring writes returned %q", out)
	}
	writeCtl(t, ch, "hangup")
	if got := cMessages(t, run(t, cBinary(t, "clients/msgtool.c"), "read", msg, "4", "65536")); !slices.Equal(got, append(msgs, "")) {
		t.Errorf("after 3 io_uring writes the queue held %q", got)
	}
	wantQueue(t, ch, "after the io_uring writes", 0, 3, 3, 0)
}

// testUringKill: SIGKILL ends an io_uring reader waiting for a message,
// and the reader takes nothing with it.
func testUringKill(t *testing.T, d *daemon) {
	ut := uringtool(t)
	ch := d.channel("uk")
	msg := filepath.Join(ch, "msg")
	r := startProc(t, d, ut, "read", msg, "1", "cur", "65536")
	// Its read waits in the daemon, or (msg supports poll) in io_uring
	// for POLLIN, the process in io_uring_enter waiting for a completion.
	waitUntil(t, "the io_uring reader waiting", func() bool {
		wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", r.cmd.Process.Pid))
		return readStatus(t, ch)["blocked_readers"] == "1" || string(wchan) == "io_cqring_wait" || r.exited()
	})
	if r.exited() {
		t.Fatalf("the io_uring reader exited: %v %s; printed %q", r.exitErr, r.err.String(), r.out.String())
	}
	r.cmd.Process.Kill()
	if err := r.wait(t); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("SIGKILLed io_uring reader: %v, want killed", err)
	}
	waitStatus(t, ch, "readers", "0")
	writeMsgs(t, msg, "for the living")
	if out := run(t, bins.goclient, "read", msg, "1"); out != q("for the living")+"\n" {
		t.Errorf("a reader after the killed io_uring reader got %q", out)
	}
	wantQueue(t, ch, "after the killed io_uring reader", 0, 1, 1, 0)
}

// waitBlocked sends cmd to p and waits until the channel shows key 1, or
// count (the request waits in the daemon), failing if p answers first.
func waitBlocked(t *testing.T, p *prober, ch, cmd, key string, count ...string) {
	t.Helper()
	want := "1"
	if len(count) > 0 {
		want = count[0]
	}
	p.send(cmd)
	waitUntil(t, cmd+" waiting in the daemon", func() bool {
		if len(p.lines) > 0 {
			t.Fatalf("%s answered at once: %s, want it to wait", cmd, p.result())
		}
		return readStatus(t, ch)[key] == want
	})
	if ds := dState(p.cmd.Process.Pid); ds != "" {
		t.Fatalf("while %s waits: %s (no signal can interrupt it)", cmd, ds)
	}
}

// io_submit of a read on msg behaves as a blocking read(2) of the
// submitter: io_submit returns once the read has its message (answers
// starting "pending" mean it returned first, the read parked in the
// background).
func testAIORead(t *testing.T, d *daemon) {
	ch := d.channel("aio")
	msg := filepath.Join(ch, "msg")
	p := readtool(t, d)
	p.want("open r "+q(msg)+" r", "ok")
	waitBlocked(t, p, ch, "aioread r 65536 0", "blocked_readers")
	writeMsgs(t, msg, "first")
	if got := p.result(); got != `ok "first"` {
		t.Errorf("io_submit read: %s, want ok \"first\" when io_submit returns", got)
	}
	writeMsgs(t, msg, "second", "third")
	p.want("aioread r 65536 5", `ok "second"`)
	p.want("aioread r 65536 11", `ok "third"`)
	wantQueue(t, ch, "after 3 io_submit reads", 0, 3, 3, 0)
}

func testAIOReadSignal(t *testing.T, d *daemon) {
	ch := d.channel("aio-sig")
	msg := filepath.Join(ch, "msg")
	p := readtool(t, d)
	p.want("open r "+q(msg)+" r", "ok")
	waitBlocked(t, p, ch, "aioread r 65536 0", "blocked_readers")
	p.cmd.Process.Signal(syscall.SIGUSR1)
	if got := p.result(); got != "EINTR" {
		t.Errorf("io_submit read interrupted by a handled SIGUSR1: %s, want EINTR", got)
	}
	wantQueue(t, ch, "after the interrupted io_submit read", 0, 0, 0, 0)
	writeMsgs(t, msg, "after")
	p.want("read r 65536", `ok "after"`)
	wantQueue(t, ch, "after a read", 0, 1, 1, 0)
}

func testAIOReadKill(t *testing.T, d *daemon) {
	ch := d.channel("aio-kill")
	msg := filepath.Join(ch, "msg")
	p := readtool(t, d)
	p.want("open r "+q(msg)+" r", "ok")
	waitBlocked(t, p, ch, "aioread r 65536 0", "blocked_readers")
	p.kill(d)
	waitStatus(t, ch, "readers", "0")
	wantQueue(t, ch, "after the submitter died", 0, 0, 0, 0)
	writeMsgs(t, msg, "for the living")
	if out := run(t, bins.goclient, "read", msg, "1"); out != q("for the living")+"\n" {
		t.Errorf("a reader after the dead submitter got %q", out)
	}
}

// io_submit of a write to a full queue waits in io_submit, interruptibly,
// and completes when there is room.
func testAIOWrite(t *testing.T, d *daemon) {
	ch := d.channel("aio-w")
	msg := filepath.Join(ch, "msg")
	writeCtl(t, ch, "queue-msgs 1")
	writeMsgs(t, msg, "full")
	p := readtool(t, d)
	p.want("open w "+q(msg)+" w", "ok")
	waitBlocked(t, p, ch, `aiowrite w "interrupted" 0`, "blocked_writers")
	p.cmd.Process.Signal(syscall.SIGUSR1)
	if got := p.result(); got != "EINTR" {
		t.Errorf("io_submit write to a full queue, interrupted by a handled SIGUSR1: %s, want EINTR", got)
	}
	wantStatus(t, ch, "after the interrupted io_submit write", map[string]string{"messages": "1", "sent": "1", "blocked_writers": "0"})

	waitBlocked(t, p, ch, `aiowrite w "waited" 0`, "blocked_writers")
	if out := run(t, bins.goclient, "read", msg, "1"); out != q("full")+"\n" {
		t.Errorf("read of the full queue: %q", out)
	}
	if got := p.result(); got != "ok 6" {
		t.Errorf("io_submit write once there was room: %s, want ok 6 when io_submit returns", got)
	}
	if out := run(t, bins.goclient, "read", msg, "1"); out != q("waited")+"\n" {
		t.Errorf("after the io_submit write the queue held %q", out)
	}
	wantQueue(t, ch, "after the io_submit writes", 0, 2, 2, 0)
}

// GNU tail -f on msg: it must print each message written after it started,
// once, as it arrives (tail polls a FUSE file once a second).
func testTailF(t *testing.T, d *daemon) {
	tail := tool(t, "tail")
	ch := d.channel("tail")
	msg := filepath.Join(ch, "msg")
	tf := startProc(t, d, tail, "-f", msg)
	waitUntil(t, "tail -f opening msg", func() bool { return readStatus(t, ch)["readers"] == "1" || tf.exited() })
	var want string
	for _, m := range []string{"M1\n", "M2\n", "M3\n", "END\n"} {
		writeMsgs(t, msg, m)
		want += m
		waitUntil(t, "tail -f printing "+strconv.Quote(m), func() bool {
			return strings.HasSuffix(tf.out.String(), m) || tf.exited()
		})
		if tf.exited() {
			t.Fatalf("tail -f exited: %v %s; printed %q", tf.exitErr, tf.err.String(), tf.out.String())
		}
	}
	if got := tf.out.String(); got != want {
		t.Errorf("tail -f printed %q, want %q", got, want)
	}
	wantQueue(t, ch, "after tail -f", 0, 4, 4, 0)
	if tf.err.String() != "" {
		t.Errorf("tail -f wrote to stderr: %s", tf.err.String())
	}
}

// FIONREAD on msg is answered by the kernel from its cached size (no
// request reaches the daemon): its value means nothing, but it must
// neither hang nor take anything.
func testFIONREAD(t *testing.T, d *daemon) {
	for i, setup := range readerSetups {
		ch := d.channel(fmt.Sprintf("fionread%d", i))
		p := readtool(t, d)
		if i == 0 {
			p.want("open e "+q(filepath.Join(ch, "msg"))+" r", "ok")
			t.Logf("FIONREAD on an empty queue: %s", p.do("fionread e"))
		}
		setupReader(t, p, filepath.Join(ch, "msg"), setup)
		ans := p.do("fionread r")
		t.Logf("FIONREAD with 2 messages queued (%s): %s", setup, ans)
		if !strings.HasPrefix(ans, "ok ") && ans != "ENOTTY" && ans != "EINVAL" {
			t.Errorf("FIONREAD: %s", ans)
		}
		wantQueue(t, ch, "after FIONREAD", 2, 2, 0, 0)
		p.want("read r 65536", `ok "M1"`)
		t.Logf("FIONREAD holding the whole of M1 (%s): %s", setup, p.do("fionread r"))
		if got := drainNonblock(t, p, filepath.Join(ch, "msg")); !slices.Equal(got, []string{"M2"}) {
			t.Errorf("after FIONREAD the queue held %q, want M2", got)
		}
	}
}

// testBufferedStdio measures what buffered stdio does to messages, for the
// README: a message is one write(2), so Python's default buffering splits
// a 20 KB json.dump into buffer-sized writes — several messages, none of
// them valid JSON on its own — while one os.write of json.dumps(...) is one
// message. Measured (Linux 6.18, Python 3.11, the daemon of main at
// 0fa320f): `with open(msg, "w") as f: json.dump(obj, f)` of 20,480 bytes
// arrived as 3 messages of 8,149 + 8,140 + 4,191 bytes (TextIOWrapper
// passes its 8 KiB chunks down when they fill, cut between json.dump's
// small writes), and one os.write(fd, json.dumps(obj).encode()) as 1
// message of 20,480 bytes. The test asserts the split, the order and the
// exact bytes, not the sizes (they follow Python's buffering); it logs them.
func testBufferedStdio(t *testing.T, d *daemon) {
	tool(t, "python3")
	ch := d.channel("stdio")
	msg := filepath.Join(ch, "msg")
	const script = `
import json, os, sys
path, how = sys.argv[1], sys.argv[2]
obj = {"items": ["item %05d %s" % (i, "x" * 40) for i in range(300)]}
text = json.dumps(obj)
text = json.dumps(dict(obj, pad="p" * (20480 - len(text) - len(', "pad": ""'))))
assert len(text) == 20480, len(text)
if how == "dump":
    with open(path, "w") as f:
        json.dump(json.loads(text), f)
else:
    fd = os.open(path, os.O_WRONLY)
    os.write(fd, text.encode())
    os.close(fd)
sys.stdout.write(text)
`
	py := func(how string) (text string, sizes []int, msgs []string) {
		t.Helper()
		text = run(t, "python3", "-c", script, msg, how)
		st := readStatus(t, ch)
		n, _ := strconv.Atoi(st["messages"])
		p := readtool(t, d)
		msgs = drainNonblock(t, p, msg)
		if len(msgs) != n {
			t.Errorf("status said %d messages, %d were read", n, len(msgs))
		}
		for _, m := range msgs {
			sizes = append(sizes, len(m))
		}
		return text, sizes, msgs
	}

	text, sizes, msgs := py("dump")
	t.Logf("json.dump of %d bytes to msg with default buffering: %d messages of %v bytes", len(text), len(msgs), sizes)
	if strings.Join(msgs, "") != text {
		t.Errorf("the messages of json.dump are not the JSON text in order")
	}
	if len(msgs) < 2 {
		t.Errorf("json.dump of 20 KB with default buffering made %d message(s): the README says buffered stdio splits it", len(msgs))
	}
	var v any
	if json.Unmarshal([]byte(msgs[0]), &v) == nil && len(msgs) > 1 {
		t.Errorf("the first piece of a split json.dump parsed as JSON")
	}

	text, sizes, msgs = py("write")
	t.Logf("one os.write of %d bytes of JSON: %d message(s) of %v bytes", len(text), len(msgs), sizes)
	if len(msgs) != 1 || msgs[0] != text {
		t.Errorf("one os.write of 20 KB of JSON made %d messages %v, want 1 of 20480", len(msgs), sizes)
	} else if err := json.Unmarshal([]byte(msgs[0]), &v); err != nil {
		t.Errorf("the one message does not parse as JSON: %v", err)
	}
}

// TestReadersCrossUser is issue 8's stall: as uid nobody, make a 0700
// channel, pwrite(msg, "x", 1, 1<<20), then 12 io_submit(PREAD, offset 0)
// on a fresh open file and exit. When Linux AIO became FUSE background
// requests (at most max_background, 12, per connection, shared with shm
// write-back) the process sat in D (exit_aio) for good, and root's
// msync(MS_SYNC) of another channel's shm hung in D with it.
//
// It runs with shm through the page cache (--passthrough=false: there
// msync's write-back is FUSE requests, and the stall was seen) and with
// the default (passthrough where the kernel allows it).
func TestReadersCrossUser(t *testing.T) {
	for _, shm := range []struct{ name, flag, want string }{
		{"shm through the page cache", "--passthrough=false", "page cache"},
		{"shm by default", "", ""},
	} {
		t.Run(shm.name, func(t *testing.T) {
			flags := []string{"--allow-other"}
			if shm.flag != "" {
				flags = append(flags, shm.flag)
			}
			u := mountForUsers(t, flags...)
			if got := u.shmPath(); shm.want != "" && got != shm.want {
				t.Fatalf("shm is served by the %s, want the %s", got, shm.want)
			}
			testCrossUserStall(t, u)
		})
	}
}

func testCrossUserStall(t *testing.T, u *userMount) {
	bin := filepath.Join(filepath.Dir(u.probe), "readtool")
	copyFile(t, cBinary(t, "clients/readtool.c"), bin)
	ch := filepath.Join(u.mnt, "private")

	cmds := strings.Join([]string{
		"mkdir " + q(ch) + " 0700",
		"open m " + q(filepath.Join(ch, "msg")) + " rw",
		`pwrite m "x" 1048576`,
		"open f " + q(filepath.Join(ch, "msg")) + " r",
		"aiosubmit f 12 4096 0",
		"exit",
	}, "\n") + "\n"
	in := filepath.Join(filepath.Dir(u.probe), "cmds")
	if err := os.WriteFile(in, []byte(cmds), 0o644); err != nil {
		t.Fatal(err)
	}
	other := startProc(t, u.daemon, "setpriv", "--reuid", nobody, "--regid", nobody, "--clear-groups",
		"sh", "-c", `exec "$0" probe < "$1"`, bin, in)
	// It must exit, its reads done or never left in flight: not stuck in
	// D at exit_aio (a moment there is normal: exit_aio waits for an RCU
	// grace period).
	if err := waitNotStuck(t, other, "uid nobody after 12 io_submit reads and exit"); err != nil {
		t.Errorf("uid nobody's probe: %v %s", err, other.err.String())
	}
	if want := "ok\nok\nok 1\nok\nok 12\n"; other.out.String() != want {
		t.Errorf("uid nobody's commands answered %q, want %q", other.out.String(), want)
	}

	// Root's msync of another channel's shm, and the close of the mapping.
	root := startProbeCmd(t, bin, []string{bin, "probe"})
	abortOnFailure(t, u.daemon)
	root.want("mkdir "+q(filepath.Join(u.mnt, "roots"))+" 0700", "ok")
	root.want("msync "+q(filepath.Join(u.mnt, "roots", "shm"))+" 65536", "ok")
	wantStatus(t, ch, "the private channel after its reader left", map[string]string{"readers": "0", "blocked_readers": "0"})

	// Twelve io_submit reads of uid nobody waiting at once for a message
	// that does not come (each in its own process, blocked in io_submit):
	// root's msync and close of a dirtied mapping still go through, and
	// SIGKILL ends each of the twelve.
	empty := filepath.Join(u.mnt, "empty")
	var waiting []*prober
	for i := range 12 {
		p := startProbeCmd(t, bin, []string{"setpriv", "--reuid", nobody, "--regid", nobody, "--clear-groups", bin, "probe"})
		abortOnFailure(t, u.daemon)
		if i == 0 {
			p.want("mkdir "+q(empty)+" 0700", "ok")
		}
		p.want("open r "+q(filepath.Join(empty, "msg"))+" r", "ok")
		waitBlocked(t, p, empty, "aioread r 4096 0", "blocked_readers", strconv.Itoa(i+1))
		waiting = append(waiting, p)
	}
	root.want("msync "+q(filepath.Join(u.mnt, "roots", "shm"))+" 65536", "ok")
	for _, p := range waiting {
		p.kill(u.daemon)
	}
	wantStatus(t, empty, "after the twelve were killed", map[string]string{"readers": "0", "blocked_readers": "0", "received": "0"})
}
