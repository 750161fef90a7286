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
)

// The cost model the tests compute with (fs/limits.go, channels.MessageCost).
const (
	channelCost     = 1024 // charged from mkdir to rmdir
	messageOverhead = 64   // charged per queued message beyond its buffer
	page            = 4096
)

// limitTests is the conformance map of limits and authority: a root daemon
// with --allow-other and small limits, clients as root and as other uids.
var limitTests = map[string]struct {
	flags []string
	test  func(t *testing.T, u *userMount)
}{
	"channels per uid and per mount":                {[]string{"--max-channels", "6", "--user-channels", "3"}, testChannelLimits},
	"queued messages per uid wait for memory":       {[]string{"--user-memory", "256K", "--max-memory", "0"}, testMessageMemory},
	"the mount's memory, root not exempt":           {[]string{"--max-memory", "512K", "--user-memory", "0"}, testMountMemory},
	"shm growth is charged at once":                 {[]string{"--user-memory", "1M", "--max-memory", "0"}, testShmMemory},
	"only the owner and root control a channel":     {nil, testAuthority},
	"a failed ctl write reads back as an error":     {nil, testCtlErrorLine},
	"failure lines are rate-limited per uid":        {nil, testLogRateLimit},
	"a removed channel's memory goes at last close": {[]string{"--user-memory", "1M"}, testRemovedRelease},
}

func TestLimits(t *testing.T) {
	for name, c := range limitTests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c.test(t, mountForUsers(t, append([]string{"--allow-other"}, c.flags...)...))
		})
	}
}

// as starts a probe running as uid (and gid) with no other groups.
func (u *userMount) as(t *testing.T, uid int) *prober {
	p := startProbeCmd(t, u.probe, []string{"setpriv", "--reuid", strconv.Itoa(uid), "--regid", strconv.Itoa(uid),
		"--clear-groups", u.probe, "probe"})
	p.want("umask 0", "ok")
	return p
}

// limitclient runs the limits client as uid (-1: as root) and returns
// its output line.
func (u *userMount) limitclient(t *testing.T, uid int, args ...string) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(u.probe), "limitclient")
	if _, err := os.Stat(bin); err != nil {
		copyFile(t, goBinary(t, "github.com/ipcfs/ipcfs/tests/limitclient"), bin)
	}
	argv := append([]string{bin}, args...)
	if uid >= 0 {
		argv = append([]string{"setpriv", "--reuid", strconv.Itoa(uid), "--regid", strconv.Itoa(uid), "--clear-groups"}, argv...)
	}
	for try := 0; ; try++ {
		out, errOut, err := runErr(argv[0], argv[1:]...)
		// A child forked by another test while we were copying may hold
		// the copy open for writing until it execs (ETXTBSY): try again.
		if err != nil && strings.Contains(err.Error(), "text file busy") && try < 100 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v\nstdout:\n%s\nstderr:\n%s", argv, err, out, errOut)
		}
		return strings.TrimSpace(out)
	}
}

// wantMode checks what stat says of path, but its size.
func wantMode(t *testing.T, p *prober, path, want string) {
	t.Helper()
	got, _, _ := strings.Cut(p.do("stat "+path), " size=")
	if got != want {
		t.Errorf("stat %s: %s, want %s", path, got, want)
	}
}

// readText reads a whole file through a probe, as the probe's user.
func readText(t *testing.T, p *prober, path string) string {
	t.Helper()
	p.want("open txt "+q(path)+" r", "ok")
	got := p.do("read txt 65536")
	p.want("close txt", "ok")
	s, err := strconv.Unquote(strings.TrimPrefix(got, "ok "))
	if err != nil {
		t.Fatalf("reading %s: %s", path, got)
	}
	return s
}

// limitsFile returns the mount's .limits file as uid's probe reads it:
// the "key value" lines as a map, and the "user …" lines.
func limitsFile(t *testing.T, p *prober, mnt string) (map[string]int64, []string) {
	t.Helper()
	kv := map[string]int64{}
	var users []string
	for _, line := range strings.Split(strings.TrimSpace(readText(t, p, filepath.Join(mnt, ".limits"))), "\n") {
		if strings.HasPrefix(line, "user ") {
			users = append(users, line)
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf(".limits line %q", line)
		}
		kv[k] = n
	}
	return kv, users
}

func testChannelLimits(t *testing.T, u *userMount) {
	r, o, o2 := u.root(t), u.other(t), u.as(t, 65533)
	for _, n := range []string{"a1", "a2", "a3"} {
		o.want("mkdir "+u.at(n)+" 0777", "ok")
	}
	o.want("mkdir "+u.at("a4")+" 0777", "EDQUOT") // nobody's three
	o2.want("mkdir "+u.at("b1")+" 0700", "ok")
	o2.want("mkdir "+u.at("b2")+" 0700", "ok")
	r.want("mkdir "+u.at("r1")+" 0777", "ok")
	// Six in the mount: everyone, root too, gets ENOSPC.
	r.want("mkdir "+u.at("r2")+" 0777", "ENOSPC")
	o2.want("mkdir "+u.at("b3")+" 0700", "ENOSPC")

	kv, users := limitsFile(t, o, u.mnt)
	for k, want := range map[string]int64{"channels": 6, "max-channels": 6, "user-channels": 3, "memory": 6 * channelCost} {
		if kv[k] != want {
			t.Errorf(".limits %s = %d, want %d (all: %v)", k, kv[k], want, kv)
		}
	}
	if want := []string{"user 65534 channels 3 memory 3072"}; strings.Join(users, "|") != strings.Join(want, "|") {
		t.Errorf(".limits read by nobody: users %q, want %q", users, want)
	}
	_, users = limitsFile(t, r, u.mnt)
	if want := "user 0 channels 1 memory 1024|user 65533 channels 2 memory 2048|user 65534 channels 3 memory 3072"; strings.Join(users, "|") != want {
		t.Errorf(".limits read by root: users %q, want %q", users, want)
	}
	// The limits file is not a channel: not listed, not writable, its name taken.
	r.want("ls "+u.at(""), `ok "a1" "a2" "a3" "b1" "b2" "r1"`)
	r.want("stat "+u.at(".limits"), "ok type=file mode=0444 uid=0 gid=0 size=0")
	r.want("open l "+u.at(".limits")+" w", "EACCES")
	o.want("rmdir "+u.at("a1"), "ok")
	r.want("mkdir "+u.at(".limits")+" 0777", "EEXIST")
	r.want("rename "+u.at("r1")+" "+u.at(".limits"), "ENOTDIR") // the kernel: a directory onto a file

	// Root's channel still works.
	r.want("open m "+u.at("r1/msg")+" rw", "ok")
	r.want(`write m "still here"`, "ok 10")
	r.want("read m 100", `ok "still here"`)

	// A freed slot is anyone's; chown moves a channel to its new owner.
	o2.want("mkdir "+u.at("b3")+" 0700", "ok")
	o2.want("mkdir "+u.at("b4")+" 0700", "ENOSPC")
	o2.want("rmdir "+u.at("b3"), "ok")
	r.want("chown "+u.at("r1")+" 65534 65534", "ok")
	o.want("mkdir "+u.at("a5")+" 0777", "EDQUOT") // a2, a3 and r1 are nobody's now
	_, users = limitsFile(t, r, u.mnt)
	// r1's charges moved with it: its channel, and the message root's
	// reader still holds (64-byte buffer + 64).
	if want := "user 65533 channels 2 memory 2048|user 65534 channels 3 memory 3200"; strings.Join(users, "|") != want {
		t.Errorf(".limits after chown: users %q, want %q", users, want)
	}
}

func testMessageMemory(t *testing.T, u *userMount) {
	o, r := u.other(t), u.root(t)
	o.want("mkdir "+u.at("m")+" 0777", "ok")
	o.want("mkdir "+u.at("m2")+" 0777", "ok")
	r.want("mkdir "+u.at("roots")+" 0777", "ok")
	// 256 KiB for nobody: two channels, then 4 KiB messages at 4096+64 each.
	cost := int64(4096 + messageOverhead)
	n := (256<<10 - 2*channelCost) / cost
	if got := u.limitclient(t, 65534, "fill", filepath.Join(u.mnt, "m"), "4096"); got != fmt.Sprintf("sent %d EAGAIN", n) {
		t.Fatalf("filling nobody's channel: %s, want sent %d EAGAIN", got, n)
	}
	// Then 1-byte messages (a 64-byte buffer each) to the last byte.
	small := int64(64 + messageOverhead)
	k := (256<<10 - 2*channelCost - n*cost) / small
	if got := u.limitclient(t, 65534, "fill", filepath.Join(u.mnt, "m"), "1"); got != fmt.Sprintf("sent %d EAGAIN", k) {
		t.Fatalf("filling nobody's channel with small messages: %s, want sent %d EAGAIN", got, k)
	}
	ch := filepath.Join(u.mnt, "m")
	wantStatus(t, ch, "full of nobody's memory", map[string]string{
		"messages": strconv.FormatInt(n+k, 10), "bytes": strconv.FormatInt(n*4096+k, 10),
		"memory": strconv.FormatInt(channelCost+n*cost+k*small, 10), "blocked_writers": "0"})
	// Another uid is not affected.
	if got := u.limitclient(t, -1, "fill", filepath.Join(u.mnt, "roots"), "4096"); !strings.HasPrefix(got, "sent 4096 EAGAIN") {
		t.Errorf("root's channel after nobody filled its memory: %s, want its queue-msgs (4096) messages", got)
	}
	// A blocking write to nobody's other channel waits for memory, and
	// gets in when a reader frees some in the first.
	w := u.other(t)
	w.want("open w "+u.at("m2/msg")+" w", "ok")
	w.send(`write w "waited for memory"`)
	waitStatus(t, filepath.Join(u.mnt, "m2"), "blocked_writers", "1")
	o.want("open r "+u.at("m/msg")+" r", "ok")
	if got := o.do("read r 8192"); len(got) < 4096 {
		t.Fatalf("reading a message: %s", got)
	}
	// The message being read is the reader's until its next read or close,
	// and still costs its owner.
	wantStatus(t, ch, "a message held by a reader", map[string]string{
		"messages": strconv.FormatInt(n+k-1, 10), "memory": strconv.FormatInt(channelCost+n*cost+k*small, 10)})
	o.want("close r", "ok")
	if got := w.result(); got != "ok 17" {
		t.Errorf("the writer waiting for memory: %s, want ok 17", got)
	}
	wantStatus(t, filepath.Join(u.mnt, "m2"), "after the wait", map[string]string{"messages": "1", "blocked_writers": "0",
		"memory": strconv.FormatInt(channelCost+64+messageOverhead, 10)})
}

func testMountMemory(t *testing.T, u *userMount) {
	r, o := u.root(t), u.other(t)
	r.want("mkdir "+u.at("x")+" 0777", "ok")
	cost := int64(4096 + messageOverhead)
	n := (512<<10 - channelCost) / cost
	if got := u.limitclient(t, -1, "fill", filepath.Join(u.mnt, "x"), "4096"); got != fmt.Sprintf("sent %d EAGAIN", n) {
		t.Fatalf("root filling the mount: %s, want sent %d EAGAIN", got, n)
	}
	left := 512<<10 - channelCost - n*cost
	if left < channelCost || left-channelCost >= page {
		t.Fatalf("test arithmetic: %d bytes left", left)
	}
	o.want("mkdir "+u.at("y")+" 0777", "ok")            // a channel still fits…
	o.want("truncate "+u.at("y/shm")+" 4096", "ENOSPC") // …a page of shm does not
	r.want("truncate "+u.at("x/shm")+" 4096", "ENOSPC") // nor for root
	o.want("open w "+u.at("y/msg")+" w,nonblock", "ok")
	o.want(`writefill w 4096 "x"`, "EAGAIN") // nor a message of that size
	o.want(`write w "small"`, "ok 5")        // a small one does (64 + 64 bytes)
	o.want("mkdir "+u.at("z")+" 0777", "ok")
	o.want("mkdir "+u.at("z2")+" 0777", "ok")
	o.want("mkdir "+u.at("z3")+" 0777", "ENOSPC")
	r.want("open x "+u.at("x/ctl")+" w", "ok")
	r.want(`write x "flush"`, "ok 5")
	o.want("truncate "+u.at("y/shm")+" 4096", "ok")
	o.want(`writefill w 4096 "x"`, "ok 4096")
}

func testShmMemory(t *testing.T, u *userMount) {
	o, r := u.other(t), u.root(t)
	o.want("mkdir "+u.at("s")+" 0777", "ok")
	ch := filepath.Join(u.mnt, "s")
	o.want("truncate "+u.at("s/shm")+" 524289", "ok") // charged as 129 pages
	wantStatus(t, ch, "truncated", map[string]string{"shm_size": "524289", "memory": strconv.Itoa(channelCost + 129*page)})
	o.want("truncate "+u.at("s/shm")+" 1048576", "EDQUOT")
	wantStatus(t, ch, "after a refused growth", map[string]string{"shm_size": "524289"})
	largest := (1<<20 - channelCost) / page * page
	if got := u.limitclient(t, 65534, "grow", ch, "4096"); got != fmt.Sprintf("size %d EDQUOT", largest) {
		t.Errorf("growing page by page: %s, want size %d EDQUOT", got, largest)
	}
	o.want("open h "+u.at("s/shm")+" rw", "ok")
	o.want(fmt.Sprintf(`pwrite h "inside" %d`, largest-6), "ok 6")
	o.want(fmt.Sprintf(`pwrite h "x" %d`, largest), "EDQUOT")
	wantStatus(t, ch, "after a refused write", map[string]string{"shm_size": strconv.Itoa(largest), "memory": strconv.Itoa(channelCost + largest)})
	// Another user's regions are not affected; shrinking gives memory back.
	r.want("mkdir "+u.at("big")+" 0777", "ok")
	r.want("truncate "+u.at("big/shm")+" 4194304", "ok")
	o.want("ftruncate h 0", "ok")
	wantStatus(t, ch, "shrunk", map[string]string{"shm_size": "0", "memory": strconv.Itoa(channelCost)})
	o.want(`pwrite h "again" 0`, "ok 5")
}

func testAuthority(t *testing.T, u *userMount) {
	r, o := u.root(t), u.other(t)
	r.want("mkdir "+u.at("pub")+" 0777", "ok")
	for _, f := range []struct{ name, mode string }{{"msg", "0666"}, {"shm", "0666"}, {"ctl", "0644"}, {"status", "0444"}} {
		wantMode(t, o, u.at("pub/"+f.name), "ok type=file mode="+f.mode+" uid=0 gid=0")
	}
	// Others send and receive as the mode bits say, and read ctl…
	o.want("open m "+u.at("pub/msg")+" rw", "ok")
	o.want(`write m "hello"`, "ok 5")
	o.want("read m 10", `ok "hello"`)
	o.want("open c "+u.at("pub/ctl")+" r", "ok")
	// …but neither write ctl nor change shm's size.
	o.want("open c "+u.at("pub/ctl")+" w", "EACCES")
	o.want("open c "+u.at("pub/ctl")+" rw", "EACCES")
	o.want("truncate "+u.at("pub/shm")+" 4096", "EPERM")
	r.want("truncate "+u.at("pub/shm")+" 8192", "ok")
	o.want("open h "+u.at("pub/shm")+" rw", "ok")
	o.want(`pwrite h "inside" 0`, "ok 6")
	// A write across the end: through the page cache it is done up to
	// the end (the kernel writes the cached page, then asks to grow), as
	// at --shm-max; with passthrough it is direct I/O and fails whole.
	if u.shmPath() == "passthrough" {
		o.want(`pwrite h "past the end" 8190`, "EPERM")
	} else {
		o.want(`pwrite h "past the end" 8190`, "ok 2")
	}
	o.want(`pwrite h "past the end" 8192`, "EPERM")
	o.want("ftruncate h 100", "EPERM")
	o.want("stat "+u.at("pub/shm"), "ok type=file mode=0666 uid=0 gid=0 size=8192")

	// mkdir -m 0733: others may only submit.
	r.want("mkdir "+u.at("jobs")+" 0733", "ok")
	wantMode(t, o, u.at("jobs/msg"), "ok type=file mode=0622 uid=0 gid=0")
	wantMode(t, o, u.at("jobs/ctl"), "ok type=file mode=0600 uid=0 gid=0")
	o.want("open j "+u.at("jobs/msg")+" w", "ok")
	o.want(`write j "job 1"`, "ok 5")
	o.want("open j2 "+u.at("jobs/msg")+" r", "EACCES")
	o.want("open jc "+u.at("jobs/ctl")+" w", "EACCES")
	o.want("truncate "+u.at("jobs/shm")+" 0", "EPERM")
	r.want("open jr "+u.at("jobs/msg")+" r", "ok")
	r.want("read jr 100", `ok "job 1"`)

	// Its own channel's ctl, yes; and root may write anyone's.
	o.want("mkdir "+u.at("mine")+" 0777", "ok")
	o.want("open c "+u.at("mine/ctl")+" w", "ok")
	o.want(`write c "queue-msgs 7"`, "ok 12")
	o.want("truncate "+u.at("mine/shm")+" 4096", "ok")
	r.want("open c "+u.at("mine/ctl")+" w", "ok")
	r.want(`write c "flush"`, "ok 5")
	// Each applied command is logged with who sent it.
	for _, w := range []struct {
		uid     float64
		command string
	}{{65534, "queue-msgs 7"}, {0, "flush"}} {
		rec := u.waitLog(func(r map[string]any) bool {
			return strings.HasPrefix(fmt.Sprint(r["msg"]), "ctl") && r["channel"] == "mine" && r["uid"] == w.uid && r["command"] == w.command
		})
		if pid, ok := rec["pid"].(float64); !ok || pid <= 0 {
			t.Errorf("ctl log line without a pid: %v", rec)
		}
	}
}

func testCtlErrorLine(t *testing.T, u *userMount) {
	o := u.other(t)
	o.want("mkdir "+u.at("e")+" 0700", "ok")
	o.want("open c "+u.at("e/ctl")+" rw", "ok")
	o.want(`write c "bogus"`, "EINVAL")
	got := o.do("pread c 4096 0")
	text, err := strconv.Unquote(strings.TrimPrefix(got, "ok "))
	if err != nil {
		t.Fatalf("pread ctl: %s", got)
	}
	first, rest, _ := strings.Cut(text, "\n")
	rec := u.waitLog(func(r map[string]any) bool { return r["errno"] == "EINVAL" && r["op"] == "Write" })
	if first != "error: "+fmt.Sprint(rec["err"]) {
		t.Errorf("first line %q, want %q (the log's text)", first, "error: "+fmt.Sprint(rec["err"]))
	}
	if rest != "queue-bytes 16777216\nqueue-msgs 4096\nhungup false\n" {
		t.Errorf("settings after the error line: %q", rest)
	}
	// Another open file of ctl has no error; a good write clears it.
	o.want("open c2 "+u.at("e/ctl")+" r", "ok")
	o.want("read c2 4096", "ok "+strconv.Quote("queue-bytes 16777216\nqueue-msgs 4096\nhungup false\n"))
	o.want(`write c "queue-msgs 9"`, "ok 12")
	o.want("pread c 4096 0", "ok "+strconv.Quote("queue-bytes 16777216\nqueue-msgs 9\nhungup false\n"))
}

func testLogRateLimit(t *testing.T, u *userMount) {
	o, r := u.other(t), u.root(t)
	o.want("mkdir "+u.at("flood")+" 0700", "ok")
	o.want("open c "+u.at("flood/ctl")+" w", "ok")
	const n = 1000
	for range n {
		o.send(`write c "bogus"`)
	}
	for i := range n {
		if got := o.result(); got != "EINVAL" {
			t.Fatalf("bad write %d: %s", i, got)
		}
	}
	// Root's warnings are its own: not suppressed by nobody's flood.
	r.want("mkdir "+u.at("rootch")+" 0700", "ok")
	r.want("open c "+u.at("rootch/ctl")+" w", "ok")
	r.want(`write c "bogus"`, "EINVAL")
	u.waitLog(func(r map[string]any) bool {
		return r["errno"] == "EINVAL" && strings.Contains(fmt.Sprint(r["req"]), "Uid=0 ")
	})
	if err := u.signal(syscall.SIGTERM); err != nil { // the last summaries are written at shutdown
		t.Fatal(err)
	}
	logged, summarized := 0, 0
	for _, rec := range u.logLines() {
		if rec["errno"] == "EINVAL" && strings.Contains(fmt.Sprint(rec["req"]), "Uid=65534 ") {
			logged++
		}
		if strings.HasPrefix(fmt.Sprint(rec["msg"]), "suppressed ") && rec["uid"] == float64(65534) {
			s, _ := rec["suppressed"].(float64)
			if fmt.Sprint(rec["msg"]) != fmt.Sprintf("suppressed %d similar lines", int(s)) {
				t.Errorf("summary line %v", rec)
			}
			summarized += int(s)
		}
	}
	t.Logf("%d failures: %d logged, %d summarized", n, logged, summarized)
	if logged+summarized != n || summarized == 0 {
		t.Errorf("%d failures: %d logged and %d summarized; want all accounted for, some summarized", n, logged, summarized)
	}
}

func testRemovedRelease(t *testing.T, u *userMount) {
	o := u.other(t)
	o.want("mkdir "+u.at("rr")+" 0777", "ok")
	o.want("truncate "+u.at("rr/shm")+" 65536", "ok")
	o.want("open m "+u.at("rr/msg")+" w", "ok")
	o.want(`write m "queued"`, "ok 6")
	o.want("open h "+u.at("rr/shm")+" rw", "ok")
	_, users := limitsFile(t, o, u.mnt)
	if want := fmt.Sprintf("user 65534 channels 1 memory %d", channelCost+65536+64+messageOverhead); strings.Join(users, "|") != want {
		t.Fatalf(".limits: %q, want %q", users, want)
	}
	o.want("rmdir "+u.at("rr"), "ok")
	// The queue and the channel are gone; shm lives while it is open.
	if _, users = limitsFile(t, o, u.mnt); strings.Join(users, "|") != "user 65534 channels 0 memory 65536" {
		t.Errorf(".limits after rmdir with shm open: %q", users)
	}
	o.want(`pwrite h "still mine" 100`, "ok 10")
	o.want("close h", "ok")
	o.want("close m", "ok")
	// The kernel may send RELEASE after close returns.
	deadline := time.Now().Add(hangTimeout)
	for {
		_, users = limitsFile(t, o, u.mnt)
		if strings.Join(users, "|") == "user 65534 channels 0 memory 0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf(".limits after the last close: %q", users)
		}
		time.Sleep(10 * time.Millisecond)
	}
	kv, _ := limitsFile(t, u.root(t), u.mnt)
	if kv["memory"] != 0 || kv["channels"] != 0 || kv["shm-files"] != 0 {
		t.Errorf(".limits of the mount after the last close: %v", kv)
	}
}

// TestLimitsFiles makes 25,000 channels and grows the shm of each: the
// daemon runs out of descriptors for regions, which is ENOSPC for the
// callers (never EMFILE), and SIGTERM still unmounts cleanly.
func TestLimitsFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("25,000 channels: not in -short mode")
	}
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("no prlimit (util-linux)")
	}
	// The same descriptor limit on every machine: below 25,000.
	const n, nofile = 25000, 20000
	d := startDaemonCmd(t, []string{"prlimit", fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--"}, bins.ipcfs,
		filepath.Join(t.TempDir(), "ipc"), "--max-channels", "0", "--user-channels", "0", "--max-memory", "0", "--user-memory", "0")
	t.Cleanup(d.stop)
	lc := goBinary(t, "github.com/ipcfs/ipcfs/tests/limitclient")
	out := strings.TrimSpace(run(t, lc, "mkdirs", d.mnt, "c", strconv.Itoa(n), "4096"))
	b, err := os.ReadFile(filepath.Join(d.mnt, ".limits"))
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "max-shm-files "); ok {
			files, _ = strconv.Atoi(v)
		}
	}
	if files <= 0 || files >= n {
		t.Fatalf(".limits: %s", b)
	}
	if want := fmt.Sprintf("mkdir ok=%d truncate ENOSPC=%d ok=%d", n, n-files, files); out != want {
		t.Errorf("25,000 mkdirs and truncates: %s, want %s", out, want)
	}
	t.Logf("%s (RLIMIT_NOFILE %d, max-shm-files %d)", out, nofile, files)
	if !strings.Contains(string(b), fmt.Sprintf("shm-files %d\n", files)) || !strings.Contains(string(b), fmt.Sprintf("channels %d\n", n)) {
		t.Errorf(".limits: %s", b)
	}
	if err := d.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM with %d channels: %v\n%s", n, err, tail(d.logText(), 20))
	}
	if isMounted(t, d.mnt) {
		t.Errorf("still mounted after SIGTERM")
	}
	for _, bad := range []string{"lazy unmount failed", "too many open files"} {
		if strings.Contains(d.logText(), bad) {
			t.Errorf("the log says %q:\n%s", bad, tail(d.logText(), 20))
		}
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// noRaceDaemon returns the daemon built without the race detector, whose
// memory is the daemon's own (the race runtime's shadow memory is not).
func noRaceDaemon(t *testing.T) string {
	t.Helper()
	p, err := buildOnce("norace:cmd/ipcfs", func(out string) *exec.Cmd {
		return exec.Command("go", "build", "-o", out, "github.com/ipcfs/ipcfs/cmd/ipcfs")
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rssKB is a process's resident memory in KiB.
func rssKB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestLimitsChurn runs 100,000 cycles of mkdir, open msg, write, rmdir
// with msg open, close: the daemon keeps no removed channel (the kernel
// forgets them when closed) and does not grow (it grew 74 MB before).
func TestLimitsChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 channels: not in -short mode")
	}
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	d := startDaemonCmd(t, nil, noRaceDaemon(t), filepath.Join(t.TempDir(), "ipc"))
	t.Cleanup(d.stop)
	lc := goBinary(t, "github.com/ipcfs/ipcfs/tests/limitclient")
	run(t, lc, "cycles", d.mnt, "warm", "1000")
	before := rssKB(t, d.cmd.Process.Pid)
	const n = 100000
	if out := run(t, lc, "cycles", d.mnt, "c", strconv.Itoa(n)); out != fmt.Sprintf("ok %d\n", n) {
		t.Fatalf("cycles: %q", out)
	}
	// Without drop_caches: the daemon drops each channel when the kernel
	// forgets it, which it does once its files are closed.
	deadline := time.Now().Add(hangTimeout)
	var st map[string]float64
	for {
		st = daemonStats(t, d)
		if st["removed_channels"] == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	after := rssKB(t, d.cmd.Process.Pid)
	t.Logf("daemon RSS %d kB before %d cycles, %d kB after; stats %v", before, n, after, st)
	if st["removed_channels"] != 0 || st["channels"] != 0 || st["handles"] != 0 {
		t.Errorf("after %d cycles the daemon holds %v removed channels, %v channels, %v handles", n, st["removed_channels"], st["channels"], st["handles"])
	}
	// 74 MB before the fix; a few MB is the allocator's and the runtime's.
	if after > before+16<<10 {
		t.Errorf("the daemon grew from %d kB to %d kB over %d cycles", before, after, n)
	}
}

// memoryCgroup makes a memory cgroup limited to limit bytes — cgroup v2
// if mounted with the memory controller, else v1 — and returns the file
// a process joins it through and a function reading its OOM-kill count.
// It is removed when the test ends (its processes must have exited).
func memoryCgroup(t *testing.T, limit int64) (procs string, oomKills func() int) {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no mountinfo: %v", err)
	}
	var v2, v1 string
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		for i, x := range f {
			if x != "-" || i+3 >= len(f) {
				continue
			}
			switch {
			case f[i+1] == "cgroup2" && v2 == "":
				if c, _ := os.ReadFile(filepath.Join(f[4], "cgroup.controllers")); strings.Contains(" "+string(c)+" ", " memory") {
					v2 = f[4]
				}
			case f[i+1] == "cgroup" && v1 == "" && strings.Contains(","+f[i+3]+",", ",memory,"):
				v1 = f[4]
			}
		}
	}
	name := fmt.Sprintf("ipcfs-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	mk := func(parent, limitFile string) (string, bool) {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Logf("cgroup %s: %v", dir, err)
			return "", false
		}
		t.Cleanup(func() { os.Remove(dir) })
		if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
			t.Logf("cgroup %s: %v", dir, err)
			return "", false
		}
		return dir, true
	}
	count := func(file, key string) func() int {
		return func() int {
			b, _ := os.ReadFile(file)
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, key+" "); ok {
					n, _ := strconv.Atoi(v)
					return n
				}
			}
			return -1
		}
	}
	if v2 != "" {
		os.WriteFile(filepath.Join(v2, "cgroup.subtree_control"), []byte("+memory"), 0)
		if dir, ok := mk(v2, "memory.max"); ok {
			t.Logf("cgroup v2 %s, memory.max %d", dir, limit)
			return filepath.Join(dir, "cgroup.procs"), count(filepath.Join(dir, "memory.events"), "oom_kill")
		}
	}
	if v1 != "" {
		if dir, ok := mk(v1, "memory.limit_in_bytes"); ok {
			t.Logf("cgroup v1 %s, memory.limit_in_bytes %d", dir, limit)
			return filepath.Join(dir, "cgroup.procs"), count(filepath.Join(dir, "memory.oom_control"), "oom_kill")
		}
	}
	t.Skip("no memory cgroup to make: neither cgroup v2 with the memory controller nor a v1 memory hierarchy is mounted and writable")
	return "", nil
}

// TestLimitsCgroup runs the daemon, with the default limits, in a memory
// cgroup of 300 MiB, and four uids fill every channel they may make with
// messages and shm: they end with clean errors, the daemon is not
// OOM-killed, and root's channel is intact.
func TestLimitsCgroup(t *testing.T) {
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot make a cgroup or run clients as other users")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (util-linux)")
	}
	const limit = 300 << 20
	procs, oomKills := memoryCgroup(t, limit)
	base, err := os.MkdirTemp("", "ipcfs-cgroup-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	lc := filepath.Join(base, "limitclient")
	copyFile(t, goBinary(t, "github.com/ipcfs/ipcfs/tests/limitclient"), lc)
	// The daemon joins the cgroup before it execs: all its memory is charged there.
	join := []string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, procs}
	d := startDaemonCmd(t, join, noRaceDaemon(t), filepath.Join(base, "ipc"), "--allow-other")
	t.Cleanup(d.stop)

	b, err := os.ReadFile(filepath.Join(d.mnt, ".limits"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), fmt.Sprintf("max-memory %d\n", limit/2)) || !strings.Contains(string(b), fmt.Sprintf("user-memory %d\n", limit/8&^(1<<20-1))) {
		t.Fatalf("the defaults do not derive from the cgroup's %d bytes:\n%s", limit, b)
	}
	keep := d.channel("keep")
	run(t, bins.goclient, "write", filepath.Join(keep, "msg"), "precious")
	if err := os.WriteFile(filepath.Join(keep, "shm"), []byte("shared bytes"), 0); err != nil {
		t.Fatal(err)
	}

	type result struct {
		uid int
		out string
		err error
	}
	results := make(chan result)
	uids := []int{65531, 65532, 65533, 65534}
	for i, uid := range uids {
		mode := []string{"msg", "shm"}[i%2]
		go func() {
			out, errOut, err := runErr("setpriv", "--reuid", strconv.Itoa(uid), "--regid", strconv.Itoa(uid), "--clear-groups",
				lc, "attack", d.mnt, fmt.Sprintf("u%d-", uid), "32", mode)
			if err != nil {
				err = fmt.Errorf("%v: %s", err, errOut)
			}
			results <- result{uid, strings.TrimSpace(out), err}
		}()
	}
	clean := map[string]bool{"ok": true, "EDQUOT": true, "ENOSPC": true, "EAGAIN": true}
	for range uids {
		r := <-results
		t.Logf("uid %d: %s", r.uid, r.out)
		if r.err != nil {
			t.Errorf("uid %d: %v", r.uid, r.err)
			continue
		}
		for _, f := range strings.Fields(r.out) {
			if k, _, ok := strings.Cut(f, "="); ok && !clean[k] {
				t.Errorf("uid %d got %s: %s", r.uid, k, r.out)
			}
		}
	}
	if st := procState(t, d.cmd.Process.Pid); st == "Z" || st == "" {
		t.Fatalf("the daemon died (state %q):\n%s", st, tail(d.logText(), 20))
	}
	if n := oomKills(); n != 0 {
		t.Errorf("the cgroup counts %d OOM kills", n)
	}
	for _, f := range []string{"memory.peak", "memory.max_usage_in_bytes"} {
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(procs), f)); err == nil {
			t.Logf("the cgroup's peak: %s bytes of %d", strings.TrimSpace(string(b)), limit)
		}
	}
	if out := run(t, bins.goclient, "read", filepath.Join(keep, "msg"), "1"); out != `"precious"`+"\n" {
		t.Errorf("root's message after the attack: %q", out)
	}
	if got, err := os.ReadFile(filepath.Join(keep, "shm")); err != nil || string(got) != "shared bytes" {
		t.Errorf("root's shm after the attack: %q, %v", got, err)
	}
	b, _ = os.ReadFile(filepath.Join(d.mnt, ".limits"))
	t.Logf(".limits after the attack:\n%s", b)
	if err := d.signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM after the attack: %v", err)
	}
}

// procState is field 3 of /proc/PID/stat ("" if there is no such process).
func procState(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return ""
}
