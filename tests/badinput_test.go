package tests

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// badInputTests is the conformance map of the spec's "ctl and status" and
// "Errors" sections: every failure a user can cause gets an errno that
// names it and a log line, and leaves the rest untouched. Each test gets
// its own daemon, with --shm-max 1M.
var badInputTests = map[string]func(t *testing.T, d *daemon){
	"status after a known sequence":      testStatusSequence,
	"ctl reads back and takes suffixes":  testCtlSettings,
	"flush empties the queue":            testFlush,
	"bad ctl writes change nothing":      testBadCtl,
	"channel names":                      testNames,
	"what cannot be created or removed":  testNotPermitted,
	"rename":                             testRename,
	"shm truncate limits":                testShmLimits,
	"msg, ctl and status truncate":       testTruncateOthers,
	"writes to a hung-up channel":        testHungUpWrites,
	"handles of a removed channel":       testRemovedHandles,
	"1000 channels leave nothing behind": testChurn,
	"rename racing a failing truncate":   testRenameRacingTruncate,
}

// testRenameRacingTruncate renames a channel back and forth while shm
// truncates beyond --shm-max fail on it: the failure's error names the
// channel, which rename changes. With a race-built daemon (as the tests
// build it) an unguarded read of the name makes the race detector report,
// and stop fails the test on that report.
func testRenameRacingTruncate(t *testing.T, d *daemon) {
	d.channel("a")
	sh(t, map[string]string{"M": d.mnt}, `
		i=0
		while [ $i -lt 200 ]; do
			mv "$M/a" "$M/b" && mv "$M/b" "$M/a"
			i=$((i + 1))
		done &
		j=0
		while [ $j -lt 200 ]; do
			truncate -s 2M "$M/a/shm" 2>/dev/null || truncate -s 2M "$M/b/shm" 2>/dev/null
			j=$((j + 1))
		done
		wait`)
}

const shmMax = 1 << 20

func TestBadInput(t *testing.T) { runMounted(t, badInputTests, "--shm-max", "1M") }

// statusKeys are the keys the spec says status has at least.
var statusKeys = []string{"messages", "bytes", "readers", "writers", "blocked_readers",
	"blocked_writers", "sent", "received", "truncated", "shm_size", "hungup"}

// wantStatus checks the keys of want against the channel's status, and
// that every key of the spec is there with a well-formed value.
func wantStatus(t *testing.T, ch, when string, want map[string]string) {
	t.Helper()
	st := readStatus(t, ch)
	decimal := regexp.MustCompile(`^(0|[1-9][0-9]*)$`)
	for _, k := range statusKeys {
		v, ok := st[k]
		switch {
		case !ok:
			t.Errorf("%s: status has no %q: %v", when, k, st)
		case k == "hungup" && v != "true" && v != "false":
			t.Errorf("%s: status hungup %q, want true or false", when, v)
		case k != "hungup" && !decimal.MatchString(v):
			t.Errorf("%s: status %s %q is not a plain decimal", when, k, v)
		}
	}
	var bad []string
	for k, v := range want {
		if st[k] != v {
			bad = append(bad, fmt.Sprintf("%s %s (want %s)", k, st[k], v))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s: status has %s", when, strings.Join(bad, ", "))
	}
}

func testStatusSequence(t *testing.T, d *daemon) {
	ch := d.channel("st")
	msg := q(filepath.Join(ch, "msg"))
	wantStatus(t, ch, "new channel", map[string]string{"messages": "0", "bytes": "0", "readers": "0",
		"writers": "0", "blocked_readers": "0", "blocked_writers": "0", "sent": "0", "received": "0",
		"truncated": "0", "shm_size": "0", "hungup": "false"})

	p := startProbe(t)
	p.want("open w "+msg+" w", "ok")
	p.want(`write w "hello"`, "ok 5")
	p.want(`write w "world!"`, "ok 6")
	p.want(`write w "x"`, "ok 1")
	wantStatus(t, ch, "after 3 sends", map[string]string{"messages": "3", "bytes": "12",
		"readers": "0", "writers": "1", "sent": "3", "received": "0"})

	// A partial read takes the message out of the queue.
	p.want("open r1 "+msg+" r", "ok")
	p.want("read r1 2", `ok "he"`)
	wantStatus(t, ch, "after a partial read", map[string]string{"messages": "2", "bytes": "7",
		"readers": "1", "writers": "1", "received": "1", "truncated": "0"})
	p.want("read r1 2", `ok "ll"`)
	p.want("pread r1 3 0", `ok "hel"`) // re-reads the window, consumes nothing
	p.want("close r1", "ok")           // "o" never read: truncated
	waitStatus(t, ch, "readers", "0")
	wantStatus(t, ch, "after closing with a remainder", map[string]string{"messages": "2",
		"received": "1", "truncated": "1"})

	// Read to the end of each message: nothing truncated at close.
	p.want("open r2 "+msg+" rw", "ok")
	wantStatus(t, ch, "with a read-write handle", map[string]string{"readers": "1", "writers": "2"})
	p.want("read r2 100", `ok "world!"`)
	p.want("read r2 6", `ok "x"`)
	p.want("close r2", "ok")
	waitStatus(t, ch, "writers", "1")
	wantStatus(t, ch, "after reading all", map[string]string{"messages": "0", "bytes": "0",
		"readers": "0", "received": "3", "truncated": "1"})

	// A blocked reader, served directly by the next write.
	b := startProbe(t)
	b.want("open r "+msg+" r", "ok")
	b.send("read r 100")
	waitStatus(t, ch, "blocked_readers", "1")
	wantStatus(t, ch, "with a blocked reader", map[string]string{"readers": "1", "blocked_readers": "1", "messages": "0"})
	p.want(`write w "direct"`, "ok 6")
	if got := b.result(); got != `ok "direct"` {
		t.Errorf("blocked reader got %s", got)
	}
	wantStatus(t, ch, "after a hand-off", map[string]string{"blocked_readers": "0", "sent": "4", "received": "4", "messages": "0"})

	// A blocked writer.
	writeCtl(t, ch, "queue-msgs 1")
	p.want(`write w "a"`, "ok 1")
	b.want("open w2 "+msg+" w", "ok")
	b.send(`write w2 "b"`)
	waitStatus(t, ch, "blocked_writers", "1")
	wantStatus(t, ch, "with a blocked writer", map[string]string{"writers": "2", "blocked_writers": "1",
		"messages": "1", "bytes": "1", "sent": "5"})
	p.want("open r3 "+msg+" r", "ok")
	p.want("read r3 10", `ok "a"`)
	if got := b.result(); got != "ok 1" {
		t.Errorf("blocked writer: %s", got)
	}
	wantStatus(t, ch, "after the writer got in", map[string]string{"blocked_writers": "0", "messages": "1",
		"sent": "6", "received": "5"})

	p.want("truncate "+q(filepath.Join(ch, "shm"))+" 8192", "ok")
	writeCtl(t, ch, "hangup")
	p.want(`write w "late"`, "EPIPE")
	p.want("read r3 10", `ok "b"`)
	p.want("read r3 10", `ok ""`)
	wantStatus(t, ch, "at the end", map[string]string{"messages": "0", "bytes": "0", "readers": "2",
		"writers": "2", "blocked_readers": "0", "blocked_writers": "0", "sent": "6", "received": "6",
		"truncated": "1", "shm_size": "8192", "hungup": "true"})
	p.close()
	b.close()
	waitStatus(t, ch, "writers", "0")
	wantStatus(t, ch, "all closed", map[string]string{"readers": "0", "writers": "0", "truncated": "1"})
}

func readCtl(t *testing.T, ch string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ch, "ctl"))
	if err != nil {
		t.Fatalf("reading ctl: %v", err)
	}
	return string(b)
}

func wantCtl(t *testing.T, ch, when string, bytes, msgs int64, hungup bool) {
	t.Helper()
	want := fmt.Sprintf("queue-bytes %d\nqueue-msgs %d\nhungup %t\n", bytes, msgs, hungup)
	if got := readCtl(t, ch); got != want {
		t.Errorf("%s: ctl reads\n%s\nwant\n%s", when, got, want)
	}
}

func testCtlSettings(t *testing.T, d *daemon) {
	ch := d.channel("c")
	wantCtl(t, ch, "defaults", 16<<20, 4096, false)
	for _, c := range []struct {
		cmds        string
		bytes, msgs int64
	}{
		{"queue-bytes 1K\nqueue-msgs 3\n", 1 << 10, 3},
		{"queue-msgs 1K", 1 << 10, 1 << 10},
		{"queue-bytes 2M", 2 << 20, 1 << 10},
		{"queue-bytes 1G\n", 1 << 30, 1 << 10},
		{"queue-msgs 10\nqueue-msgs 20\n", 1 << 30, 20}, // the last wins
		{"  queue-msgs   7  \r\n\n", 1 << 30, 7},
		{"queue-bytes 1024\nqueue-msgs 4096", 1 << 10, 4096},
	} {
		writeCtl(t, ch, c.cmds)
		wantCtl(t, ch, fmt.Sprintf("after %q", c.cmds), c.bytes, c.msgs, false)
	}

	// The limits take effect: 1 KiB holds 600+424 bytes, not 600+600.
	msg := q(filepath.Join(ch, "msg"))
	p := startProbe(t)
	p.want("open w "+msg+" w,nonblock", "ok")
	p.want(`writefill w 600 "a"`, "ok 600")
	p.want(`writefill w 600 "b"`, "EAGAIN")
	p.want(`writefill w 424 "c"`, "ok 424")
	wantStatus(t, ch, "queue-bytes 1K", map[string]string{"messages": "2", "bytes": "1024"})
	// And 2 messages are 2 messages.
	writeCtl(t, ch, "flush\nqueue-bytes 1M\nqueue-msgs 2")
	p.want(`write w "1"`, "ok 1")
	p.want(`write w "2"`, "ok 1")
	p.want(`write w "3"`, "EAGAIN")
	wantStatus(t, ch, "queue-msgs 2", map[string]string{"messages": "2", "bytes": "2"})
	// Raising the limit admits more at once.
	writeCtl(t, ch, "queue-msgs 3")
	p.want(`write w "3"`, "ok 1")
	writeCtl(t, ch, "hangup")
	wantCtl(t, ch, "after hangup", 1<<20, 3, true)
	writeCtl(t, ch, "reopen")
	wantCtl(t, ch, "after reopen", 1<<20, 3, false)
}

func testFlush(t *testing.T, d *daemon) {
	ch := d.channel("fl")
	msg := filepath.Join(ch, "msg")
	writeCtl(t, ch, "queue-msgs 5")
	run(t, bins.goclient, "seq", msg, "m", "5")
	// A writer blocked on the full queue gets in once it is flushed.
	b := startProbe(t)
	b.want("open w "+q(msg)+" w", "ok")
	b.send(`write w "after the flush"`)
	waitStatus(t, ch, "blocked_writers", "1")
	isFlush := func(r map[string]any) bool { return r["msg"] == "ctl: flushed" && r["channel"] == "fl" }
	writeCtl(t, ch, "flush")
	if got := b.result(); got != "ok 15" {
		t.Errorf("writer blocked before the flush: %s", got)
	}
	rec := d.waitLog(isFlush)
	if rec["discarded_messages"] != float64(5) {
		t.Errorf("flush log line %v: want discarded_messages 5", rec)
	}
	wantStatus(t, ch, "after flush", map[string]string{"messages": "1", "bytes": "15",
		"sent": "6", "received": "0", "blocked_writers": "0"})
	if out := run(t, bins.goclient, "read", msg, "1"); out != `"after the flush"`+"\n" {
		t.Errorf("after flush the queue held %q", out)
	}
	// Flushing an empty queue is fine, and says 0.
	writeCtl(t, ch, "flush")
	d.waitLog(func(r map[string]any) bool { return isFlush(r) && r["discarded_messages"] == float64(0) })
}

// isCtlWarning matches the warn line of a failed write to ctl.
func isCtlWarning(r map[string]any) bool {
	return r["level"] == "warning" && r["op"] == "Write" && strings.Contains(fmt.Sprint(r["err"]), "ctl")
}

func testBadCtl(t *testing.T, d *daemon) {
	ch := d.channel("bad")
	other := d.channel("other")
	writeCtl(t, ch, "queue-bytes 2K")
	run(t, bins.goclient, "write", filepath.Join(ch, "msg"), "queued\n")
	p := startProbe(t)
	p.want("open c "+q(filepath.Join(ch, "ctl"))+" w", "ok")
	bad := []string{
		"bogus\n", "HANGUP\n", "hangup now\n", "hangup\x00\n", "\xff\xfe\n", "queue-bytes\n",
		"queue-bytes 0\n", "queue-bytes -1\n", "queue-bytes 1X\n", "queue-msgs 1.5\n",
		"queue-bytes 1K 2K\n", "queue-msgs 99999999999999999999\n", "queue-msgs 2G\n",
		"queue-bytes 9223372036854775807K\n", "flush\rhangup\n",
		// One bad line spoils the write: the good lines before it are not applied.
		"flush\nhangup\nqueue-bytes 1\nbogus\n",
		"queue-msgs 5\nqueue-msgs 0\n",
		"reopen\nflush\nqueue-bytes 10\nqueue-msgs abc",
	}
	refused := func(cmd string) {
		t.Helper()
		n := logCount(d, isCtlWarning)
		if got := p.do(cmd); got != "EINVAL" {
			t.Errorf("%s: got %s, want EINVAL", cmd, got)
			return
		}
		d.waitLog(func(map[string]any) bool { return logCount(d, isCtlWarning) > n })
	}
	for _, b := range bad {
		refused("write c " + q(b))
	}
	// Huge writes: 1 MiB of junk, 1 MiB of good commands, 100 KB in one request.
	for _, huge := range []string{`writejunk c 1048576 1`, `writefill c 1048576 "flush\n"`, `writefill c 100000 "hangup\n"`} {
		refused(huge)
	}
	wantCtl(t, ch, "after the bad writes", 2<<10, 4096, false)
	wantStatus(t, ch, "after the bad writes", map[string]string{"messages": "1", "hungup": "false"})
	// This channel and others still work.
	out := sh(t, map[string]string{"CH": ch, "OTHER": other}, `
		echo fine > "$OTHER/msg"; head -n1 "$OTHER/msg"
		head -n1 "$CH/msg"
		echo 'queue-msgs 9' > "$CH/ctl"; cat "$CH/ctl"`)
	if out != "fine\nqueued\nqueue-bytes 2048\nqueue-msgs 9\nhungup false\n" {
		t.Errorf("after bad ctl writes: %q", out)
	}
}

func testNames(t *testing.T, d *daemon) {
	mnt := d.mnt
	long := strings.Repeat("n", 255)
	p := startProbe(t)
	p.want("umask 022", "ok")
	p.want("mkdir "+q(filepath.Join(mnt, long))+" 0755", "ok")
	p.want("mkdir "+q(filepath.Join(mnt, long+"x"))+" 0755", "ENAMETOOLONG")
	p.want("stat "+q(filepath.Join(mnt, long+"x")), "ENAMETOOLONG")
	p.want("mkdir "+q(filepath.Join(mnt, strings.Repeat("y", 1100)))+" 0755", "ENAMETOOLONG")
	p.want("rename "+q(filepath.Join(mnt, long))+" "+q(filepath.Join(mnt, long+"x")), "ENAMETOOLONG")
	if !strings.Contains(d.logText(), "ENAMETOOLONG") && !strings.Contains(d.logText(), "file name too long") {
		t.Errorf("no log line about the long name")
	}

	names := []string{long, "with space", " lead and trail ", "new\nline", "tab\there",
		"ütf-8 ✓ 日本語", ".hidden", "..dots", "-dash", "not utf-8 \xff\xfe", `back\slash`}
	for _, n := range names[1:] {
		p.want("mkdir "+q(filepath.Join(mnt, n))+" 0755", "ok")
	}
	var want []string
	for _, n := range names {
		want = append(want, q(n))
	}
	slices.Sort(want)
	p.want("ls "+q(mnt), "ok "+strings.Join(want, " "))
	for i, n := range names {
		msg := q(filepath.Join(mnt, n, "msg"))
		m := q(fmt.Sprintf("message %d", i))
		if got := p.do("stat " + q(filepath.Join(mnt, n))); !strings.HasPrefix(got, "ok type=dir mode=0755 ") {
			t.Errorf("stat of channel %q: %s", n, got)
		}
		p.want("open m "+msg+" rw", "ok")
		p.want("write m "+m, fmt.Sprintf("ok %d", len(fmt.Sprintf("message %d", i))))
		p.want("read m 100", "ok "+m)
		p.want("close m", "ok")
		p.want("rmdir "+q(filepath.Join(mnt, n)), "ok")
	}
	p.want("ls "+q(mnt), "ok")
}

func testNotPermitted(t *testing.T, d *daemon) {
	mnt := d.mnt
	ch := d.channel("c")
	in := func(dir, name string) string { return q(filepath.Join(dir, name)) }
	isEPERM := func(r map[string]any) bool { return r["errno"] == "EPERM" } // at warn or debug
	cases := []struct{ cmd, want string }{
		{"creat " + in(mnt, "file"), "EPERM"},
		{"mknod " + in(mnt, "fifo"), "EPERM"},
		{"symlink /tmp " + in(mnt, "link"), "EPERM"},
		{"link " + in(ch, "msg") + " " + in(mnt, "hard"), "EPERM"},
		{"link " + in(ch, "msg") + " " + in(ch, "msg2"), "EPERM"},
		{"mkdir " + in(ch, "sub") + " 0755", "EPERM"},
		{"creat " + in(ch, "extra"), "EPERM"},
		{"mknod " + in(ch, "fifo"), "EPERM"},
		{"symlink /tmp " + in(ch, "link"), "EPERM"},
		{"unlink " + in(ch, "msg"), "EPERM"},
		{"unlink " + in(ch, "status"), "EPERM"},
		// The kernel answers these itself (the VFS checks the types).
		{"rmdir " + in(ch, "msg"), "ENOTDIR"},
		{"unlink " + q(ch), "EISDIR"},
		{"open x " + in(ch, "nothing") + " r", "ENOENT"},
		{"open x " + in(mnt, "nothing") + " w,creat", "EPERM"},
	}
	p := startProbe(t)
	for _, c := range cases {
		n := logCount(d, isEPERM)
		if got := p.do(c.cmd); got != c.want {
			t.Errorf("%s: got %s, want %s", c.cmd, got, c.want)
		} else if c.want == "EPERM" {
			d.waitLog(func(map[string]any) bool { return logCount(d, isEPERM) > n })
		}
	}
	p.want("ls "+q(mnt), `ok "c"`)
	p.want("ls "+q(ch), `ok "ctl" "msg" "shm" "status"`)
	// The channel is untouched.
	out := sh(t, map[string]string{"CH": ch}, `echo ok > "$CH/msg"; head -n1 "$CH/msg"`)
	if out != "ok\n" {
		t.Errorf("channel after the refused operations: %q", out)
	}
}

func testRename(t *testing.T, d *daemon) {
	mnt := d.mnt
	a, b := d.channel("a"), d.channel("b")
	at := func(name string) string { return q(filepath.Join(mnt, name)) }
	run(t, bins.goclient, "write", filepath.Join(a, "msg"), "first")
	run(t, bins.goclient, "write", filepath.Join(b, "msg"), "in b")
	p := startProbe(t)
	p.want("open h "+q(filepath.Join(a, "msg"))+" rw", "ok") // opened before the rename

	p.want("rename "+at("a")+" "+at("c"), "ok")
	p.want("stat "+at("a"), "ENOENT")
	p.want("ls "+q(mnt), `ok "b" "c"`)
	p.want("read h 100", `ok "first"`)
	run(t, bins.goclient, "write", filepath.Join(mnt, "c", "msg"), "through the new name")
	p.want("read h 100", `ok "through the new name"`)

	sh(t, map[string]string{"MNT": mnt}, `mv "$MNT/c" "$MNT/d"`)
	p.want("ls "+q(mnt), `ok "b" "d"`)
	p.want("write h "+q("after mv"), "ok 8")

	p.want("rename "+at("d")+" "+at("b"), "EEXIST")
	p.want("rename "+at("d")+" "+at("d"), "ok")
	p.want("rename "+at("d/msg")+" "+at("d/msg2"), "EPERM")
	p.want("rename "+at("d/msg")+" "+at("x"), "EPERM")
	p.want("rename "+at("d/status")+" "+at("d/msg"), "EPERM")
	p.want("rename "+at("d")+" "+at("b/x"), "EPERM")
	p.want("rename "+at("nothing")+" "+at("y"), "ENOENT")
	p.want("ls "+q(mnt), `ok "b" "d"`)
	wantStatus(t, filepath.Join(mnt, "b"), "b after the refused renames", map[string]string{"messages": "1"})
	wantStatus(t, filepath.Join(mnt, "d"), "d after the refused renames", map[string]string{"messages": "1"})
	p.want("read h 100", `ok "after mv"`)
	if out := run(t, bins.goclient, "read", filepath.Join(b, "msg"), "1"); out != `"in b"`+"\n" {
		t.Errorf("b after the renames: %q", out)
	}
}

func testShmLimits(t *testing.T, d *daemon) {
	ch := d.channel("s")
	shm := q(filepath.Join(ch, "shm"))
	isEFBIG := func(r map[string]any) bool { // at warn or debug
		return r["msg"] == "request failed" && r["op"] == "Setattr"
	}
	p := startProbe(t)
	p.want(fmt.Sprintf("truncate %s %d", shm, shmMax), "ok")
	wantSize := func(size int) {
		t.Helper()
		if got := p.do("stat " + shm); !strings.HasPrefix(got, "ok type=file ") || !strings.HasSuffix(got, fmt.Sprintf(" size=%d", size)) {
			t.Errorf("stat shm: %s, want size %d", got, size)
		}
	}
	wantSize(shmMax)
	for _, size := range []int64{shmMax + 1, 1 << 40, 1 << 62, 1<<62 + 1, math.MaxInt64} {
		n := logCount(d, isEFBIG)
		cmd := fmt.Sprintf("truncate %s %d", shm, size)
		if got := p.do(cmd); got != "EFBIG" {
			t.Errorf("%s: got %s, want EFBIG", cmd, got)
			continue
		}
		d.waitLog(func(map[string]any) bool { return logCount(d, isEFBIG) > n })
	}
	p.want(fmt.Sprintf("truncate %s -1", shm), "EINVAL") // the kernel's answer
	p.want("open h "+shm+" rw", "ok")
	p.want(fmt.Sprintf("ftruncate h %d", 2*shmMax), "EFBIG")
	p.want(fmt.Sprintf("pwrite h %q %d", "x", shmMax), "EFBIG")
	if d.shmPath() == "passthrough" {
		// Direct I/O: the write reaches the daemon whole, and fails whole.
		p.want(fmt.Sprintf("pwrite h %q %d", "ab", shmMax-1), "EFBIG")
		p.want(fmt.Sprintf("pread h 10 %d", shmMax-1), `ok "\x00"`)
	} else {
		// The page cache writes the cached page, then asks to grow: short.
		p.want(fmt.Sprintf("pwrite h %q %d", "ab", shmMax-1), "ok 1")
		p.want(fmt.Sprintf("pread h 10 %d", shmMax-1), `ok "a"`)
	}
	wantStatus(t, ch, "after the refused sizes", map[string]string{"shm_size": fmt.Sprint(shmMax)})
	p.want("ftruncate h 4096", "ok")
	wantSize(4096)
	wantStatus(t, ch, "after shrinking", map[string]string{"shm_size": "4096"})
}

func testTruncateOthers(t *testing.T, d *daemon) {
	ch := d.channel("t")
	at := func(name string) string { return q(filepath.Join(ch, name)) }
	run(t, bins.goclient, "write", filepath.Join(ch, "msg"), "kept")
	p := startProbe(t)
	p.want("truncate "+at("msg")+" 10", "EINVAL")
	p.want("truncate "+at("msg")+" 0", "ok") // the shell's O_TRUNC: accepted, and it flushes nothing
	p.want("open w "+at("msg")+" w,trunc", "ok")
	p.want("truncate "+at("ctl")+" 5", "EINVAL")
	p.want("truncate "+at("ctl")+" 0", "ok")
	p.want("truncate "+at("status")+" 0", "EACCES")
	p.want("open s "+at("status")+" w", "EACCES")
	p.want("open s "+at("status")+" rw", "EACCES")
	wantStatus(t, ch, "after the truncates", map[string]string{"messages": "1", "bytes": "4"})
}

func testHungUpWrites(t *testing.T, d *daemon) {
	ch := d.channel("h")
	msg := q(filepath.Join(ch, "msg"))
	writeCtl(t, ch, "queue-msgs 1")
	p := startProbe(t)
	p.want("open w "+msg+" w", "ok")
	p.want("open nb "+msg+" w,nonblock", "ok")
	p.want(`write w "queued"`, "ok 6")
	// A writer blocked when the hangup comes gets EPIPE too.
	b := startProbe(t)
	b.want("open w "+msg+" w", "ok")
	b.send(`write w "blocked"`)
	waitStatus(t, ch, "blocked_writers", "1")
	writeCtl(t, ch, "hangup")
	if got := b.result(); got != "EPIPE" {
		t.Errorf("writer blocked at the hangup: %s, want EPIPE", got)
	}
	p.want(`write w "late"`, "EPIPE")
	p.want(`write nb "late"`, "EPIPE")
	p.want("open w2 "+msg+" w", "ok") // opening is fine; writing is not
	p.want(`write w2 "late"`, "EPIPE")
	d.waitLog(func(r map[string]any) bool { return r["op"] == "Write" && r["errno"] == "EPIPE" })
	wantStatus(t, ch, "hung up", map[string]string{"messages": "1", "sent": "1", "hungup": "true"})
	writeCtl(t, ch, "reopen")
	p.want("open r "+msg+" r", "ok")
	p.want("read r 100", `ok "queued"`)
	p.want(`write w "again"`, "ok 5")
	p.want("read r 100", `ok "again"`)
}

func testRemovedHandles(t *testing.T, d *daemon) {
	ch := d.channel("doomed")
	other := d.channel("other")
	at := func(name string) string { return q(filepath.Join(ch, name)) }
	run(t, bins.goclient, "write", filepath.Join(ch, "msg"), "0123456789")
	p := startProbe(t)
	p.want("open m "+at("msg")+" rw", "ok")
	p.want("read m 4", `ok "0123"`) // the remainder stays with this handle
	p.want("open c "+at("ctl")+" rw", "ok")
	p.want("open s "+at("status")+" r", "ok")
	p.want("open h "+at("shm")+" rw", "ok")
	p.want("ftruncate h 4096", "ok")
	p.want(`pwrite h "kept" 0`, "ok 4")
	run(t, bins.goclient, "write", filepath.Join(ch, "msg"), "discarded")
	b := startProbe(t)
	b.want("open r "+at("msg")+" r", "ok")
	b.want("read r 3", `ok "dis"`)
	b.send("read r 100") // the rest of "discarded"
	if got := b.result(); got != `ok "carded"` {
		t.Fatalf("reader: %s", got)
	}
	b.send("read r 100")
	waitStatus(t, ch, "blocked_readers", "1")
	run(t, bins.goclient, "write", filepath.Join(ch, "msg"), "queued, then discarded")
	if got := b.result(); got != `ok "queued, then discarded"` {
		t.Fatalf("reader: %s", got)
	}
	b.send("read r 100")
	waitStatus(t, ch, "blocked_readers", "1")

	if err := os.Remove(ch); err != nil {
		t.Fatalf("rmdir: %v", err)
	}
	if got := b.result(); got != `ok ""` {
		t.Errorf("reader blocked at rmdir: %s, want end of file", got)
	}
	p.want("read m 100", `ok "456789"`)
	p.want("read m 100", `ok ""`)
	p.want("read m 100", `ok ""`)
	p.want(`write m "x"`, "EPIPE")
	p.want("read c 100", "EIO")
	p.want("pread c 100 0", "EIO")
	p.want(`write c "flush"`, "EIO")
	p.want("read s 100", "EIO")
	p.want("pread s 100 0", "EIO")
	p.want("pread h 4 0", `ok "kept"`) // shm lives on until its last handle
	p.want(`pwrite h "more" 4`, "ok 4")
	p.want("pread h 8 0", `ok "keptmore"`)
	p.want("stat "+q(ch), "ENOENT")
	p.want("open x "+at("msg")+" r", "ENOENT")

	// A new channel of the same name is a new channel.
	p.want("mkdir "+q(ch)+" 0755", "ok")
	run(t, bins.goclient, "write", filepath.Join(ch, "msg"), "new")
	p.want("read m 100", `ok ""`)
	p.want("read c 100", "EIO")
	wantStatus(t, ch, "the new channel", map[string]string{"messages": "1", "readers": "0", "shm_size": "0"})
	if out := run(t, bins.goclient, "read", filepath.Join(ch, "msg"), "1"); out != `"new"`+"\n" {
		t.Errorf("new channel: %q", out)
	}
	run(t, bins.goclient, "write", filepath.Join(other, "msg"), "untouched")
	if out := run(t, bins.goclient, "read", filepath.Join(other, "msg"), "1"); out != `"untouched"`+"\n" {
		t.Errorf("other channel: %q", out)
	}
}

// testChurn creates, uses and removes 1,000 channels, then checks that the
// daemon's goroutines, heap and file descriptors are back where they were.
// The kernel keeps a removed directory's inodes until it forgets them; to
// make it forget at once the test writes 2 to /proc/sys/vm/drop_caches
// (dentries and inodes), which needs root.
func testChurn(t *testing.T, d *daemon) {
	bin := soakclient(t)
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	// settled waits until the kernel has forgotten every removed channel.
	settled := func(when string) map[string]float64 {
		t.Helper()
		deadline := time.Now().Add(hangTimeout)
		held := -1.0
		for drops := 0; ; drops++ {
			st := daemonStats(t, d)
			if held < 0 {
				held = st["removed_channels"]
			}
			if st["removed_channels"] == 0 && st["channels"] == 0 && st["handles"] == 0 {
				t.Logf("%s: the kernel held %v removed channels, forgotten after %d writes to drop_caches", when, held, drops)
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the daemon still holds %v removed channels, %v channels, %v handles",
					when, st["removed_channels"], st["channels"], st["handles"])
			}
			if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
				t.Skipf("cannot make the kernel forget removed channels: %v (needs root)", err)
			}
			time.Sleep(50 * time.Millisecond) // the kernel sends its FORGETs
		}
	}
	run(t, bin, "churn", d.mnt, "warm", "50")
	base := settled("after warming up")
	baseFds := fds()
	if out := run(t, bin, "churn", d.mnt, "c", "1000"); out != "ok 1000\n" {
		t.Fatalf("churn: %q", out)
	}
	after := settled("after 1000 channels")
	t.Logf("daemon before: %v; after 1000 channels: %v", base, after)
	if after["goroutines"] > base["goroutines"]+goroutineSlack {
		t.Errorf("goroutines: %v before, %v after 1000 channels", base["goroutines"], after["goroutines"])
	}
	// A leak of even 100 bytes a channel would show; allocator noise does not.
	if after["heap_alloc"] > base["heap_alloc"]+256<<10 {
		t.Errorf("heap_alloc: %v before, %v after 1000 channels", base["heap_alloc"], after["heap_alloc"])
	}
	if after["heap_objects"] > base["heap_objects"]+1000 {
		t.Errorf("heap_objects: %v before, %v after 1000 channels", base["heap_objects"], after["heap_objects"])
	}
	if n := fds(); n > baseFds {
		t.Errorf("the daemon has %d open file descriptors, %d before the 1000 channels", n, baseFds)
	}
	if logCount(d, func(r map[string]any) bool {
		return r["msg"] == "channel removed" && r["discarded_messages"] == float64(1)
	}) < 1000 {
		t.Errorf("fewer than 1000 log lines about a removed channel discarding its message")
	}
}
