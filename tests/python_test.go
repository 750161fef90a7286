package tests

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// pythonTests is the conformance map of the spec's msg section as a Python
// program sees it: os.open/read/write/pread/lseek, fcntl, select.poll,
// select.select and signal, through a real mount. Every Python client is a
// child process (tests/clients/py/fdshell.py) driven one call at a time, so
// the test can read status, write ctl or send a signal between calls.
var pythonTests = map[string]func(t *testing.T, d *daemon){
	"message boundaries":                               testPyBoundaries,
	"partial reads and the remainder":                  testPyPartialReads,
	"seekable window":                                  testPyWindow,
	"limits: 1 MiB - 4 KiB + 1 whole, 4 MiB in pieces": testPyLimits,
	"O_NONBLOCK at open and by fcntl":                  testPyNonblock,
	"poll and select wake on POLLIN":                   testPyPollIn,
	"poll and select wake on POLLOUT":                  testPyPollOut,
	"poll after hangup and with a remainder":           testPyPollEOF,
	"signals: a blocked reader":                        testPySignalReader,
	"signals: a blocked writer":                        testPySignalWriter,
	"status counters":                                  testPyStatus,
	"hangup and reopen":                                testPyHangup,
}

func TestPython(t *testing.T) { runMounted(t, pythonTests) }

// A message is one write; each read returns exactly one, NULs and all.
func testPyBoundaries(t *testing.T, d *daemon) {
	msg := filepath.Join(d.channel("b"), "msg")
	every := make([]byte, 0, 512)
	for i := range 256 {
		every = append(every, byte(i))
	}
	every = append(every, 0, 0, 0)
	every = append(every, every...)
	msgs := []string{"first", "second message", "\x00mid\x00dle\x00", string(every), "x", "\x00", "last"}

	w := startPy(t, "writer")
	w.open("w", msg, "w")
	for _, m := range msgs {
		w.write("w", m)
	}
	st := readStatus(t, filepath.Dir(msg))
	if st["messages"] != strconv.Itoa(len(msgs)) {
		t.Errorf("after %d writes: messages %s", len(msgs), st["messages"])
	}
	r := startPy(t, "reader")
	r.open("r", msg, "r")
	for i, want := range msgs {
		if got := r.read("r", 65536); got != want {
			t.Errorf("read %d with a 64 KiB buffer: %s, want %s", i, pyShow(got), pyShow(want))
		}
	}
	st = readStatus(t, filepath.Dir(msg))
	if st["messages"] != "0" || st["bytes"] != "0" || st["received"] != strconv.Itoa(len(msgs)) {
		t.Errorf("after reading every message: %v", st)
	}
}

// A short buffer takes a message in pieces; the remainder belongs to the
// open file that started it, and is counted as truncated if closed unread.
func testPyPartialReads(t *testing.T, d *daemon) {
	ch := d.channel("p")
	msg := filepath.Join(ch, "msg")
	w := startPy(t, "writer")
	w.open("w", msg, "w")
	for _, m := range []string{"0123456789", "next", "last"} {
		w.write("w", m)
	}
	a := startPy(t, "reader A")
	a.open("a", msg, "r")
	b := startPy(t, "reader B")
	b.open("b", msg, "r")
	if got := a.read("a", 3); got != "012" {
		t.Errorf("A's first 3-byte read: %q, want 012", got)
	}
	// B reads while A holds the remainder "3456789": B gets the next message.
	if got := b.read("b", 65536); got != "next" {
		t.Errorf("B read %q while A held a remainder, want the next message", got)
	}
	for _, want := range []string{"345", "678", "9", "las"} {
		if got := a.read("a", 3); got != want {
			t.Errorf("A's 3-byte read: %q, want %q (never bytes of two messages)", got, want)
		}
	}
	if st := readStatus(t, ch); st["truncated"] != "0" || st["messages"] != "0" || st["received"] != "3" {
		t.Errorf("A still holds the remainder %q: truncated %s messages %s received %s, want 0 0 3",
			"t", st["truncated"], st["messages"], st["received"])
	}
	a.ok("close", "a")
	if st := readStatus(t, ch); st["truncated"] != "1" {
		t.Errorf("after closing with a remainder: truncated %s, want 1", st["truncated"])
	}
	// The remainder was discarded: nothing of it comes to anyone.
	b.ok("nonblock", "b", "on")
	if rep := b.do("read", "b", 65536); rep.Errno != "EAGAIN" {
		t.Errorf("after the remainder was discarded, a read got %s, want EAGAIN", rep)
	}
}

// The message being read is a seekable window: lseek back and pread re-read
// it without consuming; a read at or past its end takes the next message.
func testPyWindow(t *testing.T, d *daemon) {
	ch := d.channel("win")
	msg := filepath.Join(ch, "msg")
	w := startPy(t, "writer")
	w.open("w", msg, "w")
	for _, m := range []string{"0123456789", "next", "third"} {
		w.write("w", m)
	}
	r := startPy(t, "reader")
	r.open("r", msg, "r")
	unchanged := func(step, messages, received string) {
		t.Helper()
		if st := readStatus(t, ch); st["messages"] != messages || st["received"] != received {
			t.Errorf("after %s: messages %s received %s, want %s and %s", step, st["messages"], st["received"], messages, received)
		}
	}
	if got := r.read("r", 3); got != "012" {
		t.Fatalf("first read: %q", got)
	}
	unchanged("a 3-byte read", "2", "1")
	if off := r.ok("lseek", "r", 0, "set").Offset; off != 0 {
		t.Errorf("lseek to 0 returned %d", off)
	}
	if got := r.read("r", 3); got != "012" {
		t.Errorf("read after lseek back to 0: %q, want 012 again", got)
	}
	if got := r.pread("r", 4, 2); got != "2345" {
		t.Errorf("pread 4 at 2: %q, want 2345", got)
	}
	unchanged("lseek back, read again and pread inside the window", "2", "1")
	if got := r.read("r", 65536); got != "3456789" {
		t.Errorf("read on from offset 3: %q, want the rest of the message", got)
	}
	if got := r.pread("r", 5, 0); got != "01234" {
		t.Errorf("pread at 0 after reading to the end: %q, want 01234 (the window stays until the next message)", got)
	}
	unchanged("pread inside the window", "2", "1")
	// Offset 10 is the window's end: the next message, now at [10, 14).
	if got := r.read("r", 65536); got != "next" {
		t.Errorf("read at the window's end: %q, want the next message", got)
	}
	unchanged("reading at the window's end", "1", "2")
	if got := r.pread("r", 100, 10); got != "next" {
		t.Errorf("pread at 10: %q, want next (the new window)", got)
	}
	r.ok("lseek", "r", 11, "set")
	if got := r.read("r", 2); got != "ex" {
		t.Errorf("read at 11: %q, want ex", got)
	}
	unchanged("re-reading the new window", "1", "2")
	// A read past the end, after a seek far ahead, takes the next message there.
	r.ok("lseek", "r", 1000, "set")
	if got := r.read("r", 65536); got != "third" {
		t.Errorf("read at 1000: %q, want third", got)
	}
	if got := r.pread("r", 3, 1002); got != "ird" {
		t.Errorf("pread at 1002: %q, want ird (third occupies [1000, 1005))", got)
	}
	unchanged("reading past the window", "0", "3")
	if st := readStatus(t, ch); st["truncated"] != "0" {
		t.Errorf("truncated %s, want 0: every message was read to its end", st["truncated"])
	}
}

// 1,044,481 bytes (255 pages and one) are one message; 4 MiB arrive as
// several pieces, each read(2) returning bytes of one piece only.
func testPyLimits(t *testing.T, d *daemon) {
	ch := d.channel("big")
	msg := filepath.Join(ch, "msg")
	w := startPy(t, "writer")
	w.open("w", msg, "w")
	r := startPy(t, "reader")
	r.open("r", msg, "r")

	const atomic = 255*4096 + 1 // 1,044,481 bytes: the largest write that is always one message
	data := pyRandomBytes(t, atomic, 1)
	if n := w.ok("writefile", "w", pyTempFile(t, data)).N; n != atomic {
		t.Fatalf("write of %d bytes returned %d", atomic, n)
	}
	if st := readStatus(t, ch); st["messages"] != "1" || st["bytes"] != strconv.Itoa(atomic) {
		t.Errorf("after a %d-byte write: messages %s bytes %s, want 1 and %d", atomic, st["messages"], st["bytes"], atomic)
	}
	if got := r.read("r", 2<<20); got != string(data) {
		t.Errorf("a 2 MiB read returned %d bytes, want the whole %d-byte message", len(got), atomic)
	}

	const big = 4 << 20
	data = pyRandomBytes(t, big, 2)
	if n := w.ok("writefile", "w", pyTempFile(t, data)).N; n != big {
		t.Fatalf("write of 4 MiB returned %d", n)
	}
	st := readStatus(t, ch)
	pieces, _ := strconv.Atoi(st["messages"])
	if pieces < big/(1<<20) || st["bytes"] != strconv.Itoa(big) {
		t.Fatalf("after a 4 MiB write: messages %s bytes %s, want at least 4 pieces of at most 1 MiB holding %d bytes",
			st["messages"], st["bytes"], big)
	}
	got, lens, sizes := readPieces(t, "4 MiB", r, ch, big, 4*pieces+8, big)
	for i, n := range lens {
		if n > 1<<20 {
			t.Errorf("piece %d holds %d bytes, more than 1 MiB", i, n)
		}
	}
	reads := len(sizes)
	t.Logf("4 MiB written as %d pieces, read in %d reads of %v bytes", pieces, reads, sizes)
	if !bytes.Equal(got, data) {
		t.Errorf("the pieces' concatenation (%d bytes in %d reads) differs from the 4 MiB written", len(got), reads)
	}
	if st := readStatus(t, ch); st["messages"] != "0" || st["truncated"] != "0" || pyAtoi(t, st["received"]) != 1+pieces {
		t.Errorf("after reading the pieces: %v, want messages 0, truncated 0, received %d", st, 1+pieces)
	}
}

// readPieces reads total bytes through r's open file "r" (reads of size
// bytes, at most maxReads of them) and checks, with ch's status, that no
// read takes bytes of two pieces: a read that takes a piece off the queue
// adds 1 to received and takes the piece's length off bytes. It returns
// the bytes, each piece's length and each read's size.
func readPieces(t *testing.T, what string, r *pyClient, ch string, total, maxReads, size int) (got []byte, pieceLens, readSizes []int) {
	t.Helper()
	st := readStatus(t, ch)
	received, queued := pyAtoi(t, st["received"]), pyAtoi(t, st["bytes"])
	pieceLen, pieceAt := 0, 0 // the piece being read
	for len(got) < total && len(readSizes) < maxReads {
		b := r.read("r", size)
		readSizes = append(readSizes, len(b))
		if len(b) == 0 {
			t.Fatalf("%s: read %d returned end of file", what, len(readSizes))
		}
		st := readStatus(t, ch)
		nowReceived, nowQueued := pyAtoi(t, st["received"]), pyAtoi(t, st["bytes"])
		switch nowReceived - received {
		case 0:
			if pieceAt+len(b) > pieceLen {
				t.Errorf("%s: %d bytes continue a %d-byte piece at %d: more than it holds", what, len(b), pieceLen, pieceAt)
			}
			pieceAt += len(b)
		case 1:
			if pieceAt != pieceLen {
				t.Errorf("%s: a read started a new piece with %d bytes of the last one unread", what, pieceLen-pieceAt)
			}
			pieceLen, pieceAt = queued-nowQueued, len(b)
			if len(b) > pieceLen {
				t.Errorf("%s: %d bytes from a new piece of %d bytes", what, len(b), pieceLen)
			}
			pieceLens = append(pieceLens, pieceLen)
		default:
			t.Errorf("%s: read %d (%d bytes) took %d messages off the queue: bytes of several pieces in one read", what, len(readSizes), len(b), nowReceived-received)
		}
		received, queued = nowReceived, nowQueued
		got = append(got, b...)
	}
	return got, pieceLens, readSizes
}

// O_NONBLOCK at open or set by fcntl: EAGAIN instead of waiting; cleared,
// the call waits again.
func testPyNonblock(t *testing.T, d *daemon) {
	ch := d.channel("nb")
	msg := filepath.Join(ch, "msg")
	r := startPy(t, "reader")
	r.open("atopen", msg, "r", "nonblock")
	if rep := r.do("read", "atopen", 100); rep.Errno != "EAGAIN" || rep.Exception != "BlockingIOError" {
		t.Errorf("O_NONBLOCK read of an empty queue: %s, want BlockingIOError EAGAIN", rep)
	}
	r.open("fcntl", msg, "r")
	if !r.ok("nonblock", "fcntl", "on").Nonblock {
		t.Fatal("fcntl(F_SETFL, O_NONBLOCK) did not stick")
	}
	if rep := r.do("read", "fcntl", 100); rep.Errno != "EAGAIN" {
		t.Errorf("read after fcntl(F_SETFL, O_NONBLOCK): %s, want EAGAIN", rep)
	}
	// Cleared, the read waits in the daemon until a message comes.
	r.ok("nonblock", "fcntl", "off")
	r.send("read", "fcntl", 100)
	waitStatus(t, ch, "blocked_readers", "1")
	w := startPy(t, "writer")
	w.open("w", msg, "w")
	w.write("w", "unblocked")
	if got := r.reply("read").data(t); got != "unblocked" {
		t.Errorf("the blocked read returned %q", got)
	}

	// A full queue: EAGAIN for a non-blocking writer, a wait for a blocking one.
	writeCtl(t, ch, "queue-msgs 1")
	w.open("nb", msg, "w", "nonblock")
	w.write("nb", "one")
	if rep := w.do("write", "nb", pyHex("two")); rep.Errno != "EAGAIN" || rep.Exception != "BlockingIOError" {
		t.Errorf("O_NONBLOCK write to a full queue: %s, want BlockingIOError EAGAIN", rep)
	}
	w.ok("nonblock", "w", "on")
	if rep := w.do("write", "w", pyHex("two")); rep.Errno != "EAGAIN" {
		t.Errorf("write after fcntl(F_SETFL, O_NONBLOCK) to a full queue: %s, want EAGAIN", rep)
	}
	if st := readStatus(t, ch); st["messages"] != "1" || st["sent"] != "2" || st["blocked_writers"] != "0" {
		t.Errorf("after two refused writes: %v, want messages 1, sent 2, blocked_writers 0", st)
	}
	w.ok("nonblock", "w", "off")
	w.send("write", "w", pyHex("two"))
	waitStatus(t, ch, "blocked_writers", "1")
	r.ok("nonblock", "atopen", "off")
	if got := r.read("atopen", 100); got != "one" {
		t.Errorf("read %q, want one", got)
	}
	if rep := w.reply("write"); rep.N != 3 {
		t.Errorf("the blocked write: %s, want 3 bytes written once there was room", rep)
	}
	if got := r.read("atopen", 100); got != "two" {
		t.Errorf("read %q, want two", got)
	}
}

// poll and select report POLLIN and wake a waiting process when another
// process writes.
func testPyPollIn(t *testing.T, d *daemon) {
	ch := d.channel("pin")
	msg := filepath.Join(ch, "msg")
	p := startPy(t, "poller")
	p.open("r", msg, "r")
	if ev := p.ok("poll", "r", "in", 0).Revents; len(ev) != 0 {
		t.Errorf("poll(POLLIN, 0) of an empty queue: %v, want a timeout", ev)
	}
	if p.ok("select", "r", "r", 0).Ready {
		t.Errorf("select for reading an empty queue with timeout 0: ready")
	}
	w := startPy(t, "writer")
	w.open("w", msg, "w")

	p.send("poll", "r", "in", -1)
	pyWaitPolling(t, p)
	w.write("w", "wake up")
	if ev := p.reply("poll").Revents; !slices.Contains(ev, "POLLIN") {
		t.Errorf("poller woken by a write: revents %v, want POLLIN", ev)
	}
	if got := p.read("r", 100); got != "wake up" {
		t.Errorf("read after poll: %q", got)
	}

	p.send("select", "r", "r", -1)
	pyWaitPolling(t, p)
	w.write("w", "select too")
	if !p.reply("select").Ready {
		t.Errorf("select woken by a write: not ready")
	}
	if got := p.read("r", 100); got != "select too" {
		t.Errorf("read after select: %q", got)
	}
	if ev := p.ok("poll", "r", "in", 0).Revents; len(ev) != 0 {
		t.Errorf("poll(POLLIN, 0) once drained: %v, want a timeout", ev)
	}
}

// POLLOUT is reported while a write would not block, and comes back when a
// reader makes room.
func testPyPollOut(t *testing.T, d *daemon) {
	ch := d.channel("pout")
	msg := filepath.Join(ch, "msg")
	writeCtl(t, ch, "queue-msgs 1")
	p := startPy(t, "poller")
	p.open("w", msg, "w")
	if ev := p.ok("poll", "w", "out", 0).Revents; !slices.Contains(ev, "POLLOUT") {
		t.Errorf("poll(POLLOUT, 0) with room: %v, want POLLOUT", ev)
	}
	if !p.ok("select", "w", "w", 0).Ready {
		t.Errorf("select for writing with room: not ready")
	}
	p.write("w", "fills the queue")
	if ev := p.ok("poll", "w", "out", 0).Revents; len(ev) != 0 {
		t.Errorf("poll(POLLOUT, 0) of a full queue: %v, want a timeout", ev)
	}
	if p.ok("select", "w", "w", 0).Ready {
		t.Errorf("select for writing a full queue: ready")
	}
	r := startPy(t, "reader")
	r.open("r", msg, "r")

	p.send("poll", "w", "out", -1)
	pyWaitPolling(t, p)
	if got := r.read("r", 100); got != "fills the queue" {
		t.Errorf("read %q", got)
	}
	if ev := p.reply("poll").Revents; !slices.Contains(ev, "POLLOUT") {
		t.Errorf("poller woken by a read: revents %v, want POLLOUT", ev)
	}

	p.write("w", "full again")
	p.send("select", "w", "w", -1)
	pyWaitPolling(t, p)
	if got := r.read("r", 100); got != "full again" {
		t.Errorf("read %q", got)
	}
	if !p.reply("select").Ready {
		t.Errorf("select for writing woken by a read: not ready")
	}
}

// POLLIN means "a read will not wait": after hangup of an empty queue (end
// of file), and for an open file holding a remainder.
func testPyPollEOF(t *testing.T, d *daemon) {
	ch := d.channel("eof")
	msg := filepath.Join(ch, "msg")
	p := startPy(t, "reader")
	p.open("r", msg, "r")
	p.open("other", msg, "r")
	w := startPy(t, "writer")
	w.open("w", msg, "w")
	w.write("w", "0123456789")
	if got := p.read("r", 3); got != "012" {
		t.Fatalf("read %q", got)
	}
	if ev := p.ok("poll", "r", "in", 0).Revents; !slices.Contains(ev, "POLLIN") {
		t.Errorf("poll(POLLIN) of a file holding a remainder, queue empty: %v, want POLLIN", ev)
	}
	if ev := p.ok("poll", "other", "in", 0).Revents; len(ev) != 0 {
		t.Errorf("poll(POLLIN) of another file of the same channel, queue empty: %v, want a timeout (the remainder is not its)", ev)
	}
	if got := p.read("r", 100); got != "3456789" {
		t.Errorf("read %q, want the remainder", got)
	}
	if ev := p.ok("poll", "r", "in", 0).Revents; len(ev) != 0 {
		t.Errorf("poll(POLLIN) once the remainder is read: %v, want a timeout", ev)
	}

	p.send("poll", "other", "in", -1)
	pyWaitPolling(t, p)
	writeCtl(t, ch, "hangup")
	if ev := p.reply("poll").Revents; !slices.Contains(ev, "POLLIN") {
		t.Errorf("poller of an empty queue woken by hangup: %v, want POLLIN (end of file is readable)", ev)
	}
	if ev := p.ok("poll", "r", "in", 0).Revents; !slices.Contains(ev, "POLLIN") {
		t.Errorf("poll(POLLIN, 0) after hangup of an empty queue: %v, want POLLIN", ev)
	}
	if !p.ok("select", "r", "r", 0).Ready {
		t.Errorf("select for reading after hangup: not ready")
	}
	for _, name := range []string{"r", "other", "r"} {
		if rep := p.ok("read", name, 100); rep.data(t) != "" {
			t.Errorf("read after hangup of an empty queue: %q, want end of file (b\"\")", rep.data(t))
		}
	}
}

// A signal interrupts a blocked read: KeyboardInterrupt on SIGINT; with
// SA_RESTART the read goes on and gets the next message. Nothing is lost.
func testPySignalReader(t *testing.T, d *daemon) {
	ch := d.channel("sigr")
	msg := filepath.Join(ch, "msg")
	r := startPy(t, "reader")
	r.open("r", msg, "r")
	r.send("read", "r", 100)
	waitStatus(t, ch, "blocked_readers", "1")
	r.signal(syscall.SIGINT)
	if rep := r.reply("read"); rep.Exception != "KeyboardInterrupt" {
		t.Fatalf("SIGINT to a reader blocked in os.read: %s, want KeyboardInterrupt", rep)
	}
	waitStatus(t, ch, "blocked_readers", "0")

	// SA_RESTART: the handler runs, the read resumes.
	r.ok("handle", "SIGUSR1", "restart")
	r.send("read", "r", 100)
	waitStatus(t, ch, "blocked_readers", "1")
	r.signal(syscall.SIGUSR1)
	if ev := r.reply(""); ev.Event != "signal" || ev.Signal != "SIGUSR1" {
		t.Fatalf("after SIGUSR1: %s, want the handler's report", ev)
	}
	waitStatus(t, ch, "blocked_readers", "1")
	if st := readStatus(t, ch); st["received"] != "0" || st["messages"] != "0" {
		t.Errorf("after two interrupted reads: %v, want received 0 messages 0", st)
	}
	w := startPy(t, "writer")
	w.open("w", msg, "w")
	w.write("w", "first")
	if got := r.reply("read").data(t); got != "first" {
		t.Errorf("the restarted read returned %q, want first", got)
	}
	// The interrupted reads took nothing: the next message goes to a new reader.
	w.write("w", "second")
	n := startPy(t, "new reader")
	n.open("r", msg, "r")
	if got := n.read("r", 100); got != "second" {
		t.Errorf("new reader got %q, want second", got)
	}
	if st := readStatus(t, ch); st["sent"] != "2" || st["received"] != "2" || st["messages"] != "0" {
		t.Errorf("at the end: %v, want sent 2 received 2 messages 0", st)
	}
}

// A signal interrupts a blocked write: the message of an interrupted write
// is not queued; a write restarted under SA_RESTART is, once.
func testPySignalWriter(t *testing.T, d *daemon) {
	ch := d.channel("sigw")
	msg := filepath.Join(ch, "msg")
	writeCtl(t, ch, "queue-msgs 1")
	w := startPy(t, "writer")
	w.open("w", msg, "w")
	w.write("w", "a")
	w.send("write", "w", pyHex("interrupted"))
	waitStatus(t, ch, "blocked_writers", "1")
	w.signal(syscall.SIGINT)
	if rep := w.reply("write"); rep.Exception != "KeyboardInterrupt" {
		t.Fatalf("SIGINT to a writer blocked in os.write: %s, want KeyboardInterrupt", rep)
	}
	waitStatus(t, ch, "blocked_writers", "0")
	if st := readStatus(t, ch); st["messages"] != "1" || st["sent"] != "1" || st["bytes"] != "1" {
		t.Errorf("after the interrupted write: %v, want only a queued (messages 1, sent 1, bytes 1)", st)
	}

	r := startPy(t, "reader")
	r.open("r", msg, "r", "nonblock")
	if got := r.read("r", 100); got != "a" {
		t.Errorf("read %q, want a", got)
	}
	if rep := r.do("read", "r", 100); rep.Errno != "EAGAIN" {
		t.Errorf("after a: %s, want EAGAIN (the interrupted write queued nothing)", rep)
	}

	// SA_RESTART: the handler runs and the write goes on.
	w.write("w", "b")
	w.ok("handle", "SIGUSR1", "restart")
	w.send("write", "w", pyHex("restarted"))
	waitStatus(t, ch, "blocked_writers", "1")
	w.signal(syscall.SIGUSR1)
	if ev := w.reply(""); ev.Event != "signal" || ev.Signal != "SIGUSR1" {
		t.Fatalf("after SIGUSR1: %s, want the handler's report", ev)
	}
	waitStatus(t, ch, "blocked_writers", "1")
	if got := r.read("r", 100); got != "b" {
		t.Errorf("read %q, want b", got)
	}
	if rep := w.reply("write"); rep.N != len("restarted") {
		t.Errorf("the restarted write: %s, want %d bytes written", rep, len("restarted"))
	}
	if got := r.read("r", 100); got != "restarted" {
		t.Errorf("read %q, want restarted", got)
	}
	if rep := r.do("read", "r", 100); rep.Errno != "EAGAIN" {
		t.Errorf("after restarted: %s, want EAGAIN (queued once)", rep)
	}
	if st := readStatus(t, ch); st["sent"] != "3" || st["received"] != "3" {
		t.Errorf("at the end: %v, want sent 3 received 3 (a, b, restarted)", st)
	}
}

// status counts what a known sequence did.
func testPyStatus(t *testing.T, d *daemon) {
	ch := d.channel("st")
	msg := filepath.Join(ch, "msg")
	want := func(step string, kv ...string) {
		t.Helper()
		st := readStatus(t, ch)
		for i := 0; i < len(kv); i += 2 {
			if st[kv[i]] != kv[i+1] {
				t.Errorf("%s: %s %s, want %s", step, kv[i], st[kv[i]], kv[i+1])
			}
		}
	}
	want("a new channel", "messages", "0", "bytes", "0", "readers", "0", "writers", "0", "blocked_readers", "0",
		"blocked_writers", "0", "sent", "0", "received", "0", "truncated", "0", "shm_size", "0", "hungup", "false")
	p := startPy(t, "client")
	p.open("rw", msg, "rw")
	want("one O_RDWR file open", "readers", "1", "writers", "1")
	for _, m := range []string{"one", "two", "three!"} {
		p.write("rw", m)
	}
	want("three writes", "messages", "3", "bytes", "12", "sent", "3", "received", "0")
	if got := p.read("rw", 65536); got != "one" {
		t.Errorf("read %q", got)
	}
	if got := p.read("rw", 2); got != "tw" {
		t.Errorf("read %q", got)
	}
	want("one whole read and one partial", "messages", "1", "bytes", "6", "sent", "3", "received", "2",
		"truncated", "0", "readers", "1", "writers", "1")
	p.open("r", msg, "r")
	want("O_RDWR and O_RDONLY open", "readers", "2", "writers", "1")
	p.open("w", msg, "w")
	want("O_RDWR, O_RDONLY and O_WRONLY open", "readers", "2", "writers", "2")
	p.ok("close", "rw")
	want("closing with a remainder", "truncated", "1", "readers", "1", "writers", "1", "messages", "1", "bytes", "6")
	p.ok("close", "r")
	want("O_WRONLY open", "readers", "0", "writers", "1")
	p.ok("close", "w")
	want("all closed", "readers", "0", "writers", "0", "messages", "1", "bytes", "6", "sent", "3", "received", "2",
		"truncated", "1", "blocked_readers", "0", "blocked_writers", "0", "hungup", "false")
}

// Hangup: writes fail with EPIPE (BrokenPipeError: Python ignores SIGPIPE),
// readers drain then read end of file; reopen undoes it.
func testPyHangup(t *testing.T, d *daemon) {
	ch := d.channel("hup")
	msg := filepath.Join(ch, "msg")
	r := startPy(t, "reader")
	r.open("r", msg, "r")
	w := startPy(t, "writer")
	w.open("w", msg, "w")

	// A reader waiting on an empty queue gets end of file.
	r.send("read", "r", 100)
	waitStatus(t, ch, "blocked_readers", "1")
	writeCtl(t, ch, "hangup")
	if rep := r.reply("read"); rep.Errno != "" || rep.data(t) != "" {
		t.Errorf("a blocked read at hangup: %s, want end of file", rep)
	}
	writeCtl(t, ch, "reopen")

	w.write("w", "q1")
	w.write("w", "q2")
	writeCtl(t, ch, "hangup")
	if st := readStatus(t, ch); st["hungup"] != "true" {
		t.Errorf("status after hangup: hungup %s", st["hungup"])
	}
	if rep := w.do("write", "w", pyHex("late")); rep.Errno != "EPIPE" || rep.Exception != "BrokenPipeError" {
		t.Errorf("write after hangup on a file opened before: %s, want BrokenPipeError EPIPE", rep)
	}
	w.open("new", msg, "w")
	if rep := w.do("write", "new", pyHex("late")); rep.Errno != "EPIPE" || rep.Exception != "BrokenPipeError" {
		t.Errorf("write after hangup on a file opened after: %s, want BrokenPipeError EPIPE", rep)
	}
	for _, want := range []string{"q1", "q2", "", ""} {
		if got := r.read("r", 100); got != want {
			t.Errorf("draining after hangup: %q, want %q", got, want)
		}
	}
	if st := readStatus(t, ch); st["sent"] != "2" || st["received"] != "2" || st["messages"] != "0" {
		t.Errorf("after draining: %v, want sent 2 received 2 messages 0 (the refused writes are not counted)", st)
	}

	writeCtl(t, ch, "reopen")
	if st := readStatus(t, ch); st["hungup"] != "false" {
		t.Errorf("status after reopen: hungup %s", st["hungup"])
	}
	w.write("w", "again")
	if got := r.read("r", 100); got != "again" {
		t.Errorf("after reopen, the reader that saw end of file read %q, want again", got)
	}
	r.send("read", "r", 100)
	waitStatus(t, ch, "blocked_readers", "1") // no end of file any more: it waits
	w.write("new", "and again")
	if got := r.reply("read").data(t); got != "and again" {
		t.Errorf("after reopen: %q, want and again", got)
	}
}

// pyClient is a running tests/clients/py/fdshell.py.
type pyClient struct {
	*child
	t *testing.T
}

// startPy starts a Python client; it is stopped when the test ends.
func startPy(t *testing.T, name string) *pyClient {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	script, err := filepath.Abs("clients/py/fdshell.py")
	if err != nil {
		t.Fatal(err)
	}
	p := &pyClient{child: startChild(t, "python client "+name, exec.Command("python3", script)), t: t}
	t.Cleanup(p.stop)
	return p
}

// stop ends the client: at end of stdin if the test went well, else at
// once. It never waits for a killed client: one stuck in a request the
// daemon never answers dies only when the daemon stops, after this.
func (p *pyClient) stop() {
	p.drain() // so the client never blocks writing
	if p.t.Failed() {
		p.cmd.Process.Kill()
		return
	}
	exited, err := p.endInput()
	if !exited {
		p.cmd.Process.Kill()
		p.t.Errorf("%s did not exit at end of input within %v (a hang)\nstderr:\n%s", p.name, hangTimeout, p.stderr.String())
	} else if err != nil {
		p.t.Errorf("%s: %v\nstderr:\n%s", p.name, err, p.stderr.String())
	}
}

// send writes one command line without waiting for the reply.
func (p *pyClient) send(words ...any) {
	p.t.Helper()
	p.sendLine(strings.TrimSpace(fmt.Sprintln(words...)))
}

// reply waits for the client's next line: the reply to cmd, or an event
// if cmd is "".
func (p *pyClient) reply(cmd string) pyReply {
	p.t.Helper()
	line := p.readLine(fmt.Sprintf("reply to %q", cmd))
	var r pyReply
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		p.t.Fatalf("%s: bad reply %q: %v", p.name, line, err)
	}
	if r.Cmd != cmd {
		p.t.Fatalf("%s: got %s, want the reply to %q", p.name, line, cmd)
	}
	return r
}

// do runs one command and returns its reply, whether it failed or not.
func (p *pyClient) do(words ...any) pyReply {
	p.t.Helper()
	p.send(words...)
	return p.reply(fmt.Sprint(words[0]))
}

// ok runs one command and fails the test if it raised.
func (p *pyClient) ok(words ...any) pyReply {
	p.t.Helper()
	r := p.do(words...)
	if r.Exception != "" {
		p.t.Fatalf("%s: %v: %s", p.name, words, r)
	}
	return r
}

func (p *pyClient) open(name, path, mode string, flags ...string) {
	p.t.Helper()
	p.ok(append([]any{"open", name, path, mode}, pyAnys(flags)...)...)
}

// write writes s as one os.write and checks that all of it was written.
func (p *pyClient) write(name, s string) {
	p.t.Helper()
	if n := p.ok("write", name, pyHex(s)).N; n != len(s) {
		p.t.Fatalf("%s: os.write of %d bytes returned %d", p.name, len(s), n)
	}
}

func (p *pyClient) read(name string, size int) string {
	p.t.Helper()
	return p.ok("read", name, size).data(p.t)
}

func (p *pyClient) pread(name string, size int, off int64) string {
	p.t.Helper()
	return p.ok("pread", name, size, off).data(p.t)
}

func (p *pyClient) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: sending %v: %v", p.name, sig, err)
	}
}

// pyReply is one line of fdshell.py's output.
type pyReply struct {
	Cmd       string   `json:"cmd,omitempty"`
	Data      string   `json:"data,omitempty"` // hex
	N         int      `json:"n,omitempty"`
	Offset    int64    `json:"offset,omitempty"`
	Nonblock  bool     `json:"nonblock,omitempty"`
	Revents   []string `json:"revents,omitempty"`
	Ready     bool     `json:"ready,omitempty"`
	Errno     string   `json:"errno,omitempty"`
	Exception string   `json:"exception,omitempty"`
	Event     string   `json:"event,omitempty"`
	Signal    string   `json:"signal,omitempty"`
}

func (r pyReply) data(t *testing.T) string {
	t.Helper()
	b, err := hex.DecodeString(r.Data)
	if err != nil {
		t.Fatalf("bad hex in reply: %v", err)
	}
	return string(b)
}

func (r pyReply) String() string {
	if r.Exception != "" {
		return fmt.Sprintf("%s %s", r.Exception, r.Errno)
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// pyWaitPolling waits until the client sleeps in poll(2) or select(2) — the
// daemon has answered its POLL and holds the wakeup — so that what follows
// must wake it rather than find it ready.
func pyWaitPolling(t *testing.T, p *pyClient) {
	t.Helper()
	waitPollSleep(t, p.cmd.Process.Pid, p.name)
}

// pyShow quotes s, eliding the middle of a long one.
func pyShow(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%q…%q (%d bytes)", s[:24], s[len(s)-24:], len(s))
}

func pyHex(s string) string { return hex.EncodeToString([]byte(s)) }

func pyAnys(ss []string) []any {
	a := make([]any, len(ss))
	for i, s := range ss {
		a[i] = s
	}
	return a
}

func pyAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// pyRandomBytes returns n reproducible bytes of every value.
func pyRandomBytes(t *testing.T, n int, seed uint64) []byte {
	t.Helper()
	b := make([]byte, n)
	rnd := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	return b
}

// pyTempFile writes data to a new file and returns its path.
func pyTempFile(t *testing.T, data []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), fmt.Sprintf("data-%d", len(data)))
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
