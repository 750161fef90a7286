package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// msgTests is the conformance map of the spec's msg section: each test gets
// a mount of its own daemon's and makes the channels it needs.
var msgTests = map[string]func(t *testing.T, d *daemon){
	"echo and cat":                                testEchoCat,
	"head -n1 takes one message":                  testHeadN1,
	"while read loses no line":                    testReadLoop,
	"coreutils printf is one message":             testPrintfOneMessage,
	"C client boundaries and partial reads":       testCBoundaries,
	"C client EAGAIN and poll wakeup":             testCPoll,
	"Go client reads through epoll":               testGoClient,
	"blocked readers served in order":             testReaderOrder,
	"backpressure by count and bytes":             testBackpressure,
	"hangup and reopen":                           testHangup,
	"rmdir wakes readers and writers":             testRmdirWakes,
	"SIGINT on a blocked reader loses nothing":    testSigintReader,
	"many writers and readers, each message once": testConcurrency,
}

func TestMsg(t *testing.T) { runMounted(t, msgTests) }

func testEchoCat(t *testing.T, d *daemon) {
	ch := d.channel("foo")
	out := sh(t, map[string]string{"CH": ch}, `
		echo one > "$CH/msg"; echo two > "$CH/msg"; echo three > "$CH/msg"
		echo hangup > "$CH/ctl"
		cat "$CH/msg"`)
	if out != "one\ntwo\nthree\n" {
		t.Errorf("cat got %q", out)
	}
}

func testHeadN1(t *testing.T, d *daemon) {
	ch := d.channel("h")
	out := sh(t, map[string]string{"CH": ch}, `
		env printf 'a\nb\n' > "$CH/msg"; echo c > "$CH/msg"
		head -n1 "$CH/msg"; head -n1 "$CH/msg"
		cat "$CH/status"`)
	lines := strings.Split(out, "\n")
	if lines[0] != "a" || lines[1] != "c" {
		t.Errorf("two head -n1 printed %q, want a then c", lines[:2])
	}
	if !strings.Contains(out, "messages 0\n") || !strings.Contains(out, "truncated 0\n") {
		t.Errorf("status after head: %s", out)
	}
}

func testReadLoop(t *testing.T, d *daemon) {
	ch := d.channel("loop")
	out := sh(t, map[string]string{"CH": ch}, `
		for i in 1 2 3 4 5; do env printf "m$i-a\nm$i-b\nm$i-c\n" > "$CH/msg"; done
		echo hangup > "$CH/ctl"
		while read -r l; do echo "<$l>"; done < "$CH/msg"`)
	var want strings.Builder
	for i := 1; i <= 5; i++ {
		for _, s := range []string{"a", "b", "c"} {
			fmt.Fprintf(&want, "<m%d-%s>\n", i, s)
		}
	}
	if out != want.String() {
		t.Errorf("read loop got\n%s\nwant\n%s", out, want.String())
	}
	// bash's read builtin reads ahead and seeks back; run it too where installed.
	if _, err := exec.LookPath("bash"); err == nil {
		ch2 := d.channel("loop-bash")
		out := sh(t, map[string]string{"CH": ch2}, `
			for i in 1 2 3; do env printf "m$i-a\nm$i-b\n" > "$CH/msg"; done
			echo hangup > "$CH/ctl"
			bash -c 'while read -r l; do echo "<$l>"; done < "$CH/msg"'`)
		if out != "<m1-a>\n<m1-b>\n<m2-a>\n<m2-b>\n<m3-a>\n<m3-b>\n" {
			t.Errorf("bash read loop got\n%s", out)
		}
	}
}

func testPrintfOneMessage(t *testing.T, d *daemon) {
	ch := d.channel("p")
	sh(t, map[string]string{"CH": ch}, `env printf 'a\nb\nc\n' > "$CH/msg"`)
	if st := readStatus(t, ch); st["messages"] != "1" || st["bytes"] != "6" {
		t.Errorf("after one coreutils printf: messages %s bytes %s, want 1 and 6", st["messages"], st["bytes"])
	}
	if _, err := exec.LookPath("bash"); err == nil {
		sh(t, map[string]string{"CH": ch}, `bash -c 'printf "d\ne\n" > "$CH/msg"'`)
		if st := readStatus(t, ch); st["messages"] != "3" {
			t.Errorf("bash's builtin printf writes line by line: want 3 messages in all, status says %s", st["messages"])
		}
	}
}

// cMessages parses msgtool's "<len>:<bytes>\n" records.
func cMessages(t *testing.T, out string) []string {
	t.Helper()
	var msgs []string
	for out != "" {
		n, rest, ok := strings.Cut(out, ":")
		k, err := strconv.Atoi(n)
		if !ok || err != nil || len(rest) < k+1 {
			t.Fatalf("bad msgtool output at %q", out)
		}
		msgs = append(msgs, rest[:k])
		out = rest[k+1:]
	}
	return msgs
}

func testCBoundaries(t *testing.T, d *daemon) {
	if bins.msgtool == "" {
		t.Skip("no C compiler")
	}
	msg := filepath.Join(d.channel("c"), "msg")
	run(t, bins.msgtool, "write", msg, "first", "second message", "3")
	got := cMessages(t, run(t, bins.msgtool, "read", msg, "3", "65536"))
	if want := []string{"first", "second message", "3"}; !slices.Equal(got, want) {
		t.Errorf("read with a big buffer got %q, want %q", got, want)
	}
	// A short buffer takes one message in pieces, never bytes of two.
	run(t, bins.msgtool, "write", msg, "0123456789", "next")
	got = cMessages(t, run(t, bins.msgtool, "read", msg, "5", "3"))
	if want := []string{"012", "345", "678", "9", "nex"}; !slices.Equal(got, want) {
		t.Errorf("read with a 3-byte buffer got %q, want %q", got, want)
	}
	// The remainder "t" was discarded at close, and counted.
	st := readStatus(t, filepath.Dir(msg))
	if st["truncated"] != "1" || st["messages"] != "0" {
		t.Errorf("after closing with a remainder: truncated %s messages %s, want 1 and 0", st["truncated"], st["messages"])
	}
}

func testCPoll(t *testing.T, d *daemon) {
	if bins.msgtool == "" {
		t.Skip("no C compiler")
	}
	ch := d.channel("poll")
	msg := filepath.Join(ch, "msg")
	if out := run(t, bins.msgtool, "nonblock", msg); out != "EAGAIN\n" {
		t.Errorf("O_NONBLOCK read of an empty queue: %q, want EAGAIN", out)
	}
	if out := run(t, bins.msgtool, "poll", msg, "0"); out != "read-eagain\ntimeout\n" {
		t.Errorf("poll of an empty queue: %q, want read-eagain, timeout", out)
	}
	// A poller sleeping in poll(2) is woken by another process's write:
	// EAGAIN, sleep, write, wakeup, read — the order bazil's
	// TestReadPollNode asserts from the daemon's side.
	poller := startChild(t, "C poller", exec.Command(bins.msgtool, "poll", msg, strconv.Itoa(int(hangTimeout.Milliseconds()))))
	t.Cleanup(func() { poller.killWait() })
	if l := poller.readLine("first event"); l != "read-eagain" {
		t.Fatalf("C poller's first event: %q, want read-eagain", l)
	}
	waitPollSleep(t, poller.cmd.Process.Pid, poller.name)
	if len(poller.lines) > 0 {
		t.Fatalf("C poller returned from poll before any write: %q", <-poller.lines)
	}
	run(t, bins.msgtool, "write", msg, "wake up")
	for _, want := range []string{"ready", "7:wake up"} {
		if l := poller.readLine(want); l != want {
			t.Errorf("C poller after the write: %q, want %q", l, want)
		}
	}
	if exited, err := poller.endInput(); !exited || err != nil {
		t.Errorf("C poller: %s", poller.exitReport())
	}
}

func testGoClient(t *testing.T, d *daemon) {
	ch := d.channel("go")
	msg := filepath.Join(ch, "msg")
	// One read through epoll, step by step: EAGAIN (once, or twice: the Go
	// runtime may try again before it waits), the goroutine waits in
	// epoll_wait, the write wakes it, the read gets the message.
	reader := startChild(t, "Go epoll reader", exec.Command(bins.goclient, "pollread", msg))
	t.Cleanup(func() { reader.killWait() })
	if l := reader.readLine("first event"); l != "read-eagain" {
		t.Fatalf("Go reader's first event: %q, want read-eagain", l)
	}
	waitPollSleep(t, reader.cmd.Process.Pid, reader.name)
	run(t, bins.goclient, "write", msg, "wake up")
	events := []string{"read-eagain"}
	for len(events) < 4 && !strings.HasPrefix(events[len(events)-1], "read-ready") {
		events = append(events, reader.readLine("read-ready"))
	}
	if got := strings.Join(events, " "); !regexp.MustCompile(`^(read-eagain ){1,2}read-ready "wake up"$`).MatchString(got) {
		t.Errorf("Go reader's events: %q, want read-eagain (once or twice), then read-ready \"wake up\"", got)
	}
	if exited, err := reader.endInput(); !exited || err != nil {
		t.Errorf("Go reader: %s", reader.exitReport())
	}

	// Then many: messages arrive one by one after the Go reader waits in epoll.
	seq := startChild(t, "Go reader", exec.Command(bins.goclient, "read", msg, "100"))
	t.Cleanup(func() { seq.killWait() })
	waitPollSleep(t, seq.cmd.Process.Pid, seq.name)
	run(t, bins.goclient, "seq", msg, "go", "100")
	for i := range 100 {
		if l, want := seq.readLine(fmt.Sprintf("message %d", i)), strconv.Quote(fmt.Sprintf("go-%06d", i)); l != want {
			t.Fatalf("message %d: %s, want %s", i, l, want)
		}
	}
	if exited, err := seq.endInput(); !exited || err != nil {
		t.Errorf("Go reader: %s", seq.exitReport())
	}
}

func testReaderOrder(t *testing.T, d *daemon) {
	if bins.msgtool == "" {
		t.Skip("no C compiler")
	}
	ch := d.channel("order")
	msg := filepath.Join(ch, "msg")
	const n = 4
	readers := make([]*exec.Cmd, n)
	outs := make([]strings.Builder, n)
	for i := range readers {
		// Blocking readers (a Go reader would wait in epoll, not in the daemon).
		readers[i] = exec.Command(bins.msgtool, "read", msg, "1", "100")
		readers[i].Stdout = &outs[i]
		if err := readers[i].Start(); err != nil {
			t.Fatal(err)
		}
		// The next reader starts only once this one is parked.
		waitStatus(t, ch, "blocked_readers", strconv.Itoa(i+1))
	}
	for i := range n {
		run(t, bins.goclient, "write", msg, fmt.Sprintf("m%d", i))
	}
	for i, r := range readers {
		if err := waitTimeout(r); err != nil {
			t.Fatal(err)
		}
		if got, want := outs[i].String(), fmt.Sprintf("2:m%d\n", i); got != want {
			t.Errorf("reader %d got %q, want %q (blocked readers are served in order)", i, got, want)
		}
	}
}

func testBackpressure(t *testing.T, d *daemon) {
	if bins.msgtool == "" {
		t.Skip("no C compiler")
	}
	ch := d.channel("bp")
	msg := filepath.Join(ch, "msg")
	writeCtl(t, ch, "queue-msgs 2\nqueue-bytes 10\n")
	run(t, bins.goclient, "write", msg, "aaaa", "bbbb") // 2 messages, 8 bytes: full by count
	// Blocking writers (a Go writer would wait in epoll, not in the daemon).
	blocked := exec.Command(bins.msgtool, "write", msg, "c")
	if err := blocked.Start(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ch, "blocked_writers", "1")
	if out := run(t, bins.goclient, "read", msg, "1"); out != `"aaaa"`+"\n" {
		t.Errorf("read %q", out)
	}
	if err := waitTimeout(blocked); err != nil {
		t.Fatalf("blocked writer: %v", err)
	}
	// Now "bbbb" and "c" (5 bytes): 6 more bytes do not fit in 10.
	writeCtl(t, ch, "queue-msgs 100")
	blocked = exec.Command(bins.msgtool, "write", msg, "dddddd")
	if err := blocked.Start(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ch, "blocked_writers", "1")
	run(t, bins.goclient, "read", msg, "2")
	if err := waitTimeout(blocked); err != nil {
		t.Fatalf("blocked writer: %v", err)
	}
	// A message larger than queue-bytes goes through an empty queue.
	run(t, bins.goclient, "read", msg, "1")
	run(t, bins.goclient, "write", msg, strings.Repeat("x", 100))
	if out := run(t, bins.goclient, "read", msg, "1"); len(out) != 103 {
		t.Errorf("big message read back as %d bytes", len(out))
	}
}

func testHangup(t *testing.T, d *daemon) {
	ch := d.channel("hup")
	out := sh(t, map[string]string{"CH": ch}, `
		echo queued > "$CH/msg"
		echo hangup > "$CH/ctl"
		cat "$CH/ctl"
		if echo late > "$CH/msg" 2>/dev/null; then echo "write after hangup succeeded"; fi
		cat "$CH/msg"; cat "$CH/msg"
		echo reopen > "$CH/ctl"
		echo again > "$CH/msg"
		head -n1 "$CH/msg"`)
	want := "queue-bytes 16777216\nqueue-msgs 4096\nhungup true\nqueued\nagain\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	// The errno of a write after hangup is EPIPE.
	writeCtl(t, ch, "hangup")
	_, stderr, err := runErr(bins.goclient, "write", filepath.Join(ch, "msg"), "x")
	if err == nil || !strings.Contains(stderr, "broken pipe") {
		t.Errorf("write after hangup: err %v, stderr %q; want EPIPE (broken pipe)", err, stderr)
	}
}

func testRmdirWakes(t *testing.T, d *daemon) {
	if bins.msgtool == "" {
		t.Skip("no C compiler")
	}
	// A channel has blocked readers or blocked writers, never both: one
	// channel of each.
	rch := d.channel("gone-r")
	wch := d.channel("gone-w")
	other := d.channel("other")
	reader := exec.Command("cat", filepath.Join(rch, "msg"))
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, rch, "blocked_readers", "1")

	msg := filepath.Join(wch, "msg")
	writeCtl(t, wch, "queue-msgs 1")
	run(t, bins.goclient, "write", msg, "queued")
	writer := exec.Command(bins.msgtool, "write", msg, "blocked")
	var werr strings.Builder
	writer.Stderr = &werr
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, wch, "blocked_writers", "1")

	for _, ch := range []string{rch, wch} {
		if err := os.Remove(ch); err != nil {
			t.Fatalf("rmdir: %v", err)
		}
	}
	if err := waitTimeout(reader); err != nil {
		t.Errorf("cat after rmdir: %v (want end of file, exit 0)", err)
	}
	if err := waitTimeout(writer); err == nil || !strings.Contains(strings.ToLower(werr.String()), "broken pipe") {
		t.Errorf("blocked writer after rmdir: %v %q, want EPIPE", err, werr.String())
	}
	// Other channels are untouched.
	run(t, bins.goclient, "write", filepath.Join(other, "msg"), "still here")
	if out := run(t, bins.goclient, "read", filepath.Join(other, "msg"), "1"); out != `"still here"`+"\n" {
		t.Errorf("other channel: %q", out)
	}
}

func testSigintReader(t *testing.T, d *daemon) {
	ch := d.channel("sig")
	msg := filepath.Join(ch, "msg")
	for range 3 {
		cat := exec.Command("cat", msg)
		if err := cat.Start(); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, ch, "blocked_readers", "1")
		cat.Process.Signal(syscall.SIGINT)
		err := waitTimeout(cat)
		if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
			t.Fatalf("cat after SIGINT: %v, want killed by SIGINT", err)
		}
		waitStatus(t, ch, "blocked_readers", "0")
	}
	run(t, bins.goclient, "write", msg, "not lost")
	if out := run(t, bins.goclient, "read", msg, "1"); out != `"not lost"`+"\n" {
		t.Errorf("after interrupted readers: %q", out)
	}
}

func testConcurrency(t *testing.T, d *daemon) {
	ch := d.channel("many")
	msg := filepath.Join(ch, "msg")
	writeCtl(t, ch, "queue-msgs 16")
	const writers, readers, each = 4, 4, 500
	var procs []*exec.Cmd
	outs := make([]strings.Builder, readers)
	for i := range readers {
		r := exec.Command(bins.goclient, "readall", msg)
		r.Stdout = &outs[i]
		procs = append(procs, r)
	}
	for i := range writers {
		procs = append(procs, exec.Command(bins.goclient, "seq", msg, fmt.Sprintf("w%d", i), strconv.Itoa(each)))
	}
	for _, p := range procs {
		p.Stderr = os.Stderr
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range procs[readers:] {
		if err := waitTimeout(w); err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	writeCtl(t, ch, "hangup")
	for _, r := range procs[:readers] {
		if err := waitTimeout(r); err != nil {
			t.Fatalf("reader: %v", err)
		}
	}
	checkEachOnceInOrder(t, outs, writers, each)
}

// checkEachOnceInOrder checks what goclient readall readers printed of
// the messages of goclient seq writers w0…w(writers-1), each messages:
// every message read exactly once, each writer's in order at each reader.
// It reports, for a message read twice, which readers got it.
func checkEachOnceInOrder(t *testing.T, outs []strings.Builder, writers, each int) {
	t.Helper()
	seen := map[string]int{}
	for i := range outs {
		last := map[string]int{}
		for _, l := range strings.Split(strings.TrimSpace(outs[i].String()), "\n") {
			if l == "" {
				continue
			}
			m, err := strconv.Unquote(l)
			if err != nil {
				t.Fatalf("reader %d: bad line %q", i, l)
			}
			seen[m]++
			w, seq, _ := strings.Cut(m, "-")
			n, _ := strconv.Atoi(seq)
			if p, ok := last[w]; ok && n <= p {
				t.Errorf("reader %d got %s after %s-%06d: a writer's order broken", i, m, w, p)
			}
			last[w] = n
		}
	}
	for w := range writers {
		for i := range each {
			if m := fmt.Sprintf("w%d-%06d", w, i); seen[m] != 1 {
				t.Errorf("%s received %d times", m, seen[m])
				for r := range outs {
					if n := strings.Count(outs[r].String(), strconv.Quote(m)+"\n"); n > 0 {
						t.Logf("%s: reader %d got it %d times", m, r, n)
					}
				}
			}
		}
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct messages, want %d", len(seen), writers*each)
	}
}

// writeCtl writes commands to a channel's ctl file.
func writeCtl(t *testing.T, ch, cmds string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(ch, "ctl"), []byte(cmds), 0); err != nil {
		t.Fatalf("ctl %q: %v", cmds, err)
	}
}

// waitStatus waits until a channel's status shows key = want.
func waitStatus(t *testing.T, ch, key, want string) {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	var st map[string]string
	for time.Now().Before(deadline) {
		if st = readStatus(t, ch); st[key] == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("status never showed %s %s: %v", key, want, st)
}
