package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// serviceTests is the conformance map of ipcfs as a system service: the
// systemd unit, mount(8) and fstab, ipcfs ls, the man pages, the install
// script, and the small things of the command line.
var serviceTests = map[string]func(t *testing.T){
	"systemd unit: verify, READY=1 and STOPPING=1": testSystemdUnit,
	"mount(8), fstab and umount":                   testMountHelper,
	"mount(8) form: bad options fail at once":      testMountHelperErrors,
	"ipcfs ls: table and JSON":                     testLs,
	"ipcfs ls by another user":                     testLsOtherUser,
	"man pages render without warnings":            testManPages,
	"install.sh into a DESTDIR, twice":             testInstall,
	"mount -h: the flags on stdout, exit 0":        testMountHelp,
	"bazil's log lines in the JSON log":            testBazilLog,
	"README: the first commands need no sudo":      testReadmeFirstCommands,
}

func TestService(t *testing.T) {
	for name, test := range serviceTests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t)
		})
	}
}

// repoRoot is the repository's top directory (the tests run in tests/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// plainTempDir is a temporary directory whose path has no characters that
// need quoting in a log line or that mount options cannot hold (t.TempDir
// names hold the test's name, with commas and spaces).
func plainTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ipcfs-service-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// needTool fails the test when a tool scripts/setup.sh installs is missing.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: scripts/setup.sh installs it", name)
	}
}

// manTree copies the man pages into a MANPATH tree (man1/, man7/).
func manTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, page := range []string{"ipcfs.1", "ipcfs.7"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs/man", page))
		if err != nil {
			t.Fatal(err)
		}
		sec := filepath.Join(dir, "man"+page[len(page)-1:])
		os.MkdirAll(sec, 0o755)
		if err := os.WriteFile(filepath.Join(sec, page), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// execStart is the unit's ExecStart line, split into words.
var execStartRE = regexp.MustCompile(`(?m)^ExecStart=(.*)$`)

func testSystemdUnit(t *testing.T) {
	needTool(t, "systemd-analyze")
	needTool(t, "systemd-escape")
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	mnt := filepath.Join(plainTempDir(t), "ipc")
	instance := strings.TrimSpace(run(t, "systemd-escape", "--path", mnt))
	unit, err := os.ReadFile(filepath.Join(repoRoot(t), "dist/systemd/ipcfs@.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := execStartRE.FindSubmatch(unit)
	if m == nil || !strings.HasPrefix(string(m[1]), "/usr/local/bin/ipcfs ") {
		t.Fatalf("unit's ExecStart %q: want /usr/local/bin/ipcfs (install.sh rewrites it)", m)
	}
	// The unit as install.sh installs it, naming the binary under test,
	// and an instance of it as systemctl enable links it.
	unitDir := t.TempDir()
	unit = bytes.Replace(unit, []byte("ExecStart=/usr/local/bin/ipcfs "), []byte("ExecStart="+bins.ipcfs+" "), 1)
	if err := os.WriteFile(filepath.Join(unitDir, "ipcfs@.service"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	name := "ipcfs@" + instance + ".service"
	if err := os.Symlink("ipcfs@.service", filepath.Join(unitDir, name)); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"ipcfs@.service", name} {
		cmd := exec.Command("systemd-analyze", "verify", filepath.Join(unitDir, u))
		// Documentation=man:… is checked with man(1): find the pages.
		cmd.Env = append(os.Environ(), "MANPATH="+manTree(t))
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
		}
	}

	// Run the ExecStart line as systemd would for this instance: %f is
	// the unescaped instance, $IPCFS_FLAGS splits into words.
	path := strings.TrimSpace(run(t, "systemd-escape", "--unescape", "--path", instance))
	if path != mnt {
		t.Fatalf("%%f of %s is %q, want %q", name, path, mnt)
	}
	var argv []string
	for _, w := range strings.Fields(string(execStartRE.FindSubmatch(unit)[1])) {
		switch w {
		case "$IPCFS_FLAGS":
			argv = append(argv, "--queue-msgs", "3")
		case "%f":
			argv = append(argv, path)
		default:
			argv = append(argv, w)
		}
	}
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer exec.Command("fusermount3", "-u", "-z", mnt).Run()
	receive := func() string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(hangTimeout))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			cmd.Process.Kill()
			t.Fatalf("no notification: %v\nlog:\n%s", err, stderr.String())
		}
		return string(buf[:n])
	}
	if got := receive(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	// Ready means ready: the mount answers, with the flags of IPCFS_FLAGS.
	if mountCount(t, mnt) != 1 {
		t.Errorf("READY=1 before the mount is there")
	}
	if err := os.Mkdir(filepath.Join(mnt, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	if ctl, err := os.ReadFile(filepath.Join(mnt, "c/ctl")); err != nil || !strings.Contains(string(ctl), "queue-msgs 3\n") {
		t.Errorf("ctl after READY=1: %q, %v; want queue-msgs 3", ctl, err)
	}
	// The journal gets the normal text format on stderr (copied from a
	// pipe: it may come just after the datagram).
	for deadline := time.Now().Add(hangTimeout); !strings.Contains(stderr.String(), "level=info msg=mounted mountpoint="+mnt+" shm="); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr (the journal) lacks the text mounted line:\n%s", stderr.String())
		}
	}
	// systemctl stop sends SIGTERM.
	cmd.Process.Signal(syscall.SIGTERM)
	if got := receive(); got != "STOPPING=1" {
		t.Errorf("notification after SIGTERM %q, want STOPPING=1", got)
	}
	if err := waitTimeout(cmd); err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0\n%s", err, stderr.String())
	}
	if mountCount(t, mnt) != 0 {
		t.Errorf("still mounted after the daemon exited")
	}
}

// helperScript runs in a mount namespace of its own, where the test's
// ipcfs is /usr/local/sbin/ipcfs (mount(8) runs mount.fuse3 with PATH
// cleared, and its shell finds ipcfs on the default path) and the test's
// fstab is /etc/fstab. It mounts with mount(8) both ways, says "mounted",
// waits for a line on stdin, then unmounts with umount(8).
const helperScript = `set -eu
mount --bind "$BIN" /usr/local/sbin
mount --bind "$FSTAB" /etc/fstab
# The test's syslog: Go's log/syslog tries /dev/log, then /var/run/syslog.
if [ -e /dev/log ]; then mount --bind "$SYSLOG/syslog" /dev/log; else mount --bind "$SYSLOG" /run; fi
mount -t fuse.ipcfs ipcfs "$MNT" -o allow_other,queue_bytes=32M,log_file="$LOG"
mount "$MNT2"
mount -t fuse.ipcfs ipcfs "$MNT3" -o log_level=debug
umount "$MNT3"
for m in "$MNT" "$MNT2"; do
	awk -v m="$m" '$5 == m { for (i = 7; $i != "-"; i++) ; print "mountinfo", $(i+1), $(i+2), $(i+3) }' /proc/self/mountinfo
done
mkdir "$MNT/c" "$MNT2/d"
echo hello > "$MNT/c/msg"
sed 's/^/ctl1 /' "$MNT/c/ctl"
sed 's/^/ctl2 /' "$MNT2/d/ctl"
/usr/local/sbin/ipcfs ls "$MNT" "$MNT2" | sed 's/^/ls /'
echo mounted
read -r go
umount "$MNT"
umount "$MNT2"
echo unmounted
`

func testMountHelper(t *testing.T) {
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: mount(8) of a FUSE filesystem by another user needs an fstab entry with 'user'")
	}
	for _, tool := range []string{"unshare", "mount", "umount", "mount.fuse3"} {
		needTool(t, tool)
	}
	tmp := plainTempDir(t)
	binDir := filepath.Join(tmp, "sbin")
	os.Mkdir(binDir, 0o755)
	if err := os.Symlink(bins.ipcfs, filepath.Join(binDir, "ipcfs")); err != nil {
		t.Fatal(err)
	}
	mnt, mnt2 := filepath.Join(tmp, "ipc"), filepath.Join(tmp, "ipc2")
	log, log2 := filepath.Join(tmp, "ipcfs.log"), filepath.Join(tmp, "ipcfs2.log")
	mnt3 := filepath.Join(tmp, "ipc3")
	for _, d := range []string{mnt, mnt2, mnt3} {
		os.Mkdir(d, 0o755)
	}
	syslogDir := filepath.Join(tmp, "syslog")
	os.Mkdir(syslogDir, 0o755)
	syslogd, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(syslogDir, "syslog"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer syslogd.Close()
	syslogLines := make(chan string, 100)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := syslogd.Read(buf)
			if err != nil {
				close(syslogLines)
				return
			}
			syslogLines <- string(buf[:n])
		}
	}()
	fstab := filepath.Join(tmp, "fstab")
	line := fmt.Sprintf("ipcfs %s fuse.ipcfs allow_other,queue_msgs=5,nofail,_netdev,log_file=%s,log_format=json 0 0\n", mnt2, log2)
	if err := os.WriteFile(fstab, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", helperScript)
	cmd.Env = append(os.Environ(), "BIN="+binDir, "FSTAB="+fstab, "MNT="+mnt, "MNT2="+mnt2, "MNT3="+mnt3, "LOG="+log, "SYSLOG="+syslogDir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out []string
	readUntil := func(want string) {
		t.Helper()
		timeout := time.After(hangTimeout)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the script ended before %q: %v\nstdout:\n%s\nstderr:\n%s\nlog:\n%s",
						want, waitTimeout(cmd), strings.Join(out, "\n"), stderr.String(), readFileString(log))
				}
				if l == want {
					return
				}
				out = append(out, l)
			case <-timeout:
				cmd.Process.Kill()
				t.Fatalf("no %q within %v", want, hangTimeout)
			}
		}
	}
	readUntil("mounted")

	// Without log_file, the daemon logs to syslog: the facility is daemon,
	// the tag ipcfs, the line the usual text format.
	var got []string
	for timeout := time.After(hangTimeout); len(got) == 0 || !strings.Contains(got[len(got)-1], "exiting"); {
		select {
		case l := <-syslogLines:
			got = append(got, l)
		case <-timeout:
			t.Fatalf("syslog got %q; want the daemon's lines up to its exit", got)
		}
	}
	syslogRE := regexp.MustCompile(`^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d ipcfs\[\d+\]: time="[^"]+" level=(\w+) msg=(.*)\n$`)
	var msgs []string
	for _, l := range got {
		m := syslogRE.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("syslog line %q", l)
			continue
		}
		if want := map[string]string{"debug": "31", "info": "30"}[m[2]]; m[1] != want {
			t.Errorf("syslog priority %s for level %s, want %s", m[1], m[2], want)
		}
		if m[2] == "info" {
			msgs = append(msgs, m[3])
		}
	}
	if len(msgs) < 2 || !strings.HasPrefix(msgs[0], "mounted mountpoint="+mnt3+" ") || msgs[len(msgs)-1] != `"unmounted from outside; exiting"` {
		t.Errorf("syslog info lines: %q", msgs)
	}

	// mount(8) has returned; each daemon runs on in a session of its own.
	pid, pid2 := findDaemon(t, "--log-file="+log), findDaemon(t, "--log-file="+log2)
	for _, p := range []int{pid, pid2} {
		if sid, _ := unix.Getsid(p); sid != p {
			t.Errorf("daemon %d is in session %d, want its own", p, sid)
		}
	}
	want := []string{
		"mountinfo fuse.ipcfs ipcfs rw,user_id=0,group_id=0,default_permissions,allow_other",
		"mountinfo fuse.ipcfs ipcfs rw,user_id=0,group_id=0,default_permissions,allow_other",
		"ctl1 queue-bytes 33554432", "ctl1 queue-msgs 4096", "ctl1 hungup false",
		"ctl2 queue-bytes 16777216", "ctl2 queue-msgs 5", "ctl2 hungup false",
	}
	if !slices.Equal(out[:min(len(out), len(want))], want) {
		t.Errorf("in the namespace:\n%s\nwant first\n%s", strings.Join(out, "\n"), strings.Join(want, "\n"))
	}
	var ls []string
	for _, l := range out {
		if f := strings.Fields(l); len(f) > 5 && f[0] == "ls" {
			ls = append(ls, f[1]+" "+f[4])
		}
	}
	if wantLs := []string{"CHANNEL MSGS", mnt + "/c 1", mnt2 + "/d 0"}; !slices.Equal(ls, wantLs) {
		t.Errorf("ipcfs ls in the namespace: %q, want %q", ls, wantLs)
	}

	io.WriteString(stdin, "go\n")
	readUntil("unmounted")
	if err := waitTimeout(cmd); err != nil {
		t.Errorf("script: %v\n%s", err, stderr.String())
	}
	if s := stderr.String(); s != "" {
		t.Errorf("mount(8) or umount(8) wrote to stderr:\n%s", s)
	}
	// umount(8) stops each daemon: it logs that and exits.
	for _, p := range []int{pid, pid2} {
		waitGone(t, p)
	}
	text := readFileString(log)
	if !regexp.MustCompile(`(?s)level=info msg=mounted mountpoint=` + regexp.QuoteMeta(mnt) + ` shm=[^\n]*\n.*level=info msg="unmounted from outside; exiting"\n$`).MatchString(text) {
		t.Errorf("log_file of the mount -t daemon:\n%s", text)
	}
	for _, bad := range []string{"level=error", "level=warn", "DATA RACE", "panic"} {
		if strings.Contains(text, bad) {
			t.Errorf("log_file has %q:\n%s", bad, text)
		}
	}
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(readFileString(log2)), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("log_format=json: line %q: %v", l, err)
		}
		recs = append(recs, rec)
	}
	if len(recs) < 2 || recs[0]["msg"] != "mounted" || recs[len(recs)-1]["msg"] != "unmounted from outside; exiting" {
		t.Errorf("log_file of the fstab daemon: %v", recs)
	}
}

// readFileString returns a file's contents, or "" if it cannot be read.
func readFileString(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// findDaemon returns the pid of the ipcfs process with arg among its
// arguments (a unique path: this test's own daemon).
func findDaemon(t *testing.T, arg string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) > 1 && args[1] == "mount" && slices.Contains(args, arg) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	t.Fatalf("no ipcfs mount process with %q", arg)
	return 0
}

// waitGone waits until process pid has exited (gone, or a zombie of a
// parent that does not reap).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(hangTimeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return
		}
	}
	t.Errorf("daemon %d still runs %v after umount", pid, hangTimeout)
}

func testMountHelperErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"ipcfs", dir, "-o", "rw,bogus=1"}, `unknown option "bogus"`},
		{[]string{"ipcfs", dir, "-o", "queue_bytes"}, "needs a value"},
		{[]string{"ipcfs", dir, "-o", "queue_msgs=lots"}, "queue-msgs"},
		{[]string{"ipcfs", dir, "-o", "log_level=loud"}, "--log-level"},
		{[]string{"ipcfs", "relative/path"}, `unknown command "ipcfs"`},
	} {
		_, stderr, err := runErr(bins.ipcfs, tc.args...)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("ipcfs %q: %v, want exit status 2", tc.args, err)
		}
		if !strings.Contains(stderr, tc.says) {
			t.Errorf("ipcfs %q said %q; want %q", tc.args, stderr, tc.says)
		}
	}
	// A mount that fails reports the daemon's reason, and exit 1.
	_, stderr, err := runErr(bins.ipcfs, "ipcfs", filepath.Join(dir, "m"), "-o", "queue_msgs=0")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr, "at least 1") {
		t.Errorf("mount form with queue_msgs=0: %v %q; want exit 1 with the daemon's reason", err, stderr)
	}
	if bins.skip == "" {
		d := mount(t)
		_, stderr, err := runErr(bins.ipcfs, "ipcfs", d.mnt, "-o", "rw")
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr, "already a live FUSE mount") {
			t.Errorf("mount form on a live mount: %v %q; want exit 1 saying it is already a live FUSE mount", err, stderr)
		}
	}
}

func testLs(t *testing.T) {
	d := mount(t, "--queue-msgs", "1")
	a, b, c := d.channel("a"), d.channel("b"), d.channel("c")
	sh(t, map[string]string{"A": a, "B": b, "C": c}, `
		echo hi > "$A/msg"; echo hangup > "$A/ctl"
		truncate -s 8192 "$B/shm"; chmod 700 "$B"
		echo 1 > "$C/msg"`)
	// A blocked reader of b and a blocked writer of c.
	var bg []*exec.Cmd
	for _, script := range []string{`exec cat "$B/msg"`, `echo 2 > "$C/msg"`} {
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), "B="+b, "C="+c)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		bg = append(bg, cmd)
	}
	t.Cleanup(func() {
		for _, cmd := range bg {
			cmd.Process.Kill()
			waitTimeout(cmd)
		}
	})
	waitStatus(t, b, "blocked_readers", "1")
	waitStatus(t, c, "blocked_writers", "1")

	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	table := run(t, bins.ipcfs, "ls", d.mnt)
	var rows []string
	for _, l := range strings.Split(strings.TrimRight(table, "\n"), "\n") {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	want := []string{
		"CHANNEL OWNER PERMS MSGS BYTES READERS WRITERS BLK_R BLK_W SHM HUNGUP",
		a + " " + me.Username + " 755 1 3 0 0 0 0 0 true",
		b + " " + me.Username + " 700 0 0 1 0 1 0 8192 false",
		c + " " + me.Username + " 755 1 2 0 1 0 1 0 false",
	}
	if !slices.Equal(rows, want) {
		t.Errorf("ipcfs ls:\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}

	var recs []map[string]any
	if err := json.Unmarshal([]byte(run(t, bins.ipcfs, "ls", "--json", d.mnt)), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("ls --json: %d channels, want 3: %v", len(recs), recs)
	}
	wantB := map[string]any{
		"mount": d.mnt, "name": "b", "path": b, "owner": me.Username, "uid": float64(os.Getuid()), "gid": float64(os.Getgid()), "mode": "0700",
		"messages": 0.0, "bytes": 0.0, "readers": 1.0, "writers": 0.0, "blocked_readers": 1.0,
		"blocked_writers": 0.0, "sent": 0.0, "received": 0.0, "truncated": 0.0, "shm_size": 8192.0, "hungup": false,
	}
	for k, v := range wantB {
		if recs[1][k] != v {
			t.Errorf("ls --json: b's %s is %v, want %v", k, recs[1][k], v)
		}
	}
	if recs[0]["hungup"] != true || recs[2]["blocked_writers"] != 1.0 {
		t.Errorf("ls --json: a %v, c %v", recs[0], recs[2])
	}

	// With no mount named: every ipcfs mount, this one among them. The
	// machine may hold other ipcfs mounts — parallel tests' mounts coming
	// and going, a dead daemon's mount left behind — and ls reports those
	// on stderr with exit status 1; none of that may be about this mount.
	all, stderr, err := runErr(bins.ipcfs, "ls")
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("ipcfs ls: %v\n%s", err, stderr)
		}
		for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
			if strings.Contains(l, d.mnt) {
				t.Errorf("ipcfs ls without a mount point: error about this mount: %s", l)
			}
		}
	}
	for _, ch := range []string{a, b, c} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(ch) + ` `).MatchString(all) {
			t.Errorf("ipcfs ls without a mount point lacks %s:\n%s", ch, all)
		}
	}
	// A directory that is not an ipcfs mount is an error; the rest is listed.
	out, stderr, err := runErr(bins.ipcfs, "ls", t.TempDir(), d.mnt)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr, "is not an ipcfs mount") ||
		strings.Count(out, "\n") != 4 {
		t.Errorf("ls of a plain directory and a mount: %v %q\n%s", err, stderr, out)
	}
}

// testLsOtherUser: a user who may not read a channel's status still sees
// the channel, without counters.
func testLsOtherUser(t *testing.T) {
	u := mountForUsers(t, "--allow-other")
	ipcfs := filepath.Join(filepath.Dir(u.probe), "ipcfs")
	copyFile(t, bins.ipcfs, ipcfs)
	open, private := u.channel("open"), u.channel("private")
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	sh(t, map[string]string{"CH": open}, `echo hi > "$CH/msg"`)
	out := run(t, "setpriv", "--reuid", nobody, "--regid", nobody, "--clear-groups", ipcfs, "ls", u.mnt)
	var rows []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n")[1:] {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	want := []string{
		open + " root 755 1 3 0 0 0 0 0 false",
		private + " root 700 - - - - - - - -",
	}
	if !slices.Equal(rows, want) {
		t.Errorf("ipcfs ls as uid %s:\n%s\nwant\n%s", nobody, strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

func testManPages(t *testing.T) {
	needTool(t, "man")
	for _, page := range []string{"ipcfs.1", "ipcfs.7"} {
		path := filepath.Join(repoRoot(t), "docs/man", page)
		cmd := exec.Command("man", "--warnings", "-l", path)
		cmd.Env = append(os.Environ(), "MANWIDTH=80")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man --warnings -l %s: %v\n%s", page, err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "NAME") || !strings.Contains(stdout.String(), "SEE ALSO") {
			t.Errorf("man -l %s rendered no NAME and SEE ALSO:\n%s", page, stdout.String())
		}
	}
	// ipcfs(1) documents every flag of ipcfs mount.
	page, err := os.ReadFile(filepath.Join(repoRoot(t), "docs/man/ipcfs.1"))
	if err != nil {
		t.Fatal(err)
	}
	help := run(t, bins.ipcfs, "mount", "-h")
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(help, -1) {
		if !strings.Contains(string(page), `\-\-`+strings.ReplaceAll(m[1], "-", `\-`)) {
			t.Errorf("ipcfs(1) does not document --%s", m[1])
		}
	}
}

func testInstall(t *testing.T) {
	dest := t.TempDir()
	script := filepath.Join(repoRoot(t), "scripts/install.sh")
	install := func() map[string]string {
		t.Helper()
		cmd := exec.Command(script)
		cmd.Env = append(os.Environ(), "DESTDIR="+dest, "PREFIX=/usr")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		files := map[string]string{}
		filepath.Walk(dest, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				b, _ := os.ReadFile(p)
				files[strings.TrimPrefix(p, dest)] = fmt.Sprintf("%v %x", fi.Mode(), b)
			}
			return nil
		})
		return files
	}
	first := install()
	wantModes := map[string]string{
		"/usr/bin/ipcfs":                         "-rwxr-xr-x",
		"/usr/lib/systemd/system/ipcfs@.service": "-rw-r--r--",
		"/usr/share/man/man1/ipcfs.1":            "-rw-r--r--",
		"/usr/share/man/man7/ipcfs.7":            "-rw-r--r--",
	}
	if len(first) != len(wantModes) {
		t.Errorf("installed %d files, want %d: %v", len(first), len(wantModes), slices.Sorted(mapKeys(first)))
	}
	for f, mode := range wantModes {
		if !strings.HasPrefix(first[f], mode+" ") {
			t.Errorf("%s: %.12q, want mode %s", f, first[f], mode)
		}
	}
	if second := install(); !mapsEqual(first, second) {
		t.Errorf("a second install.sh changed the files")
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "usr/lib/systemd/system/ipcfs@.service"))
	if !strings.Contains(string(unit), "\nExecStart=/usr/bin/ipcfs mount $IPCFS_FLAGS %f\n") {
		t.Errorf("installed unit does not start /usr/bin/ipcfs:\n%s", unit)
	}
	if out := run(t, filepath.Join(dest, "usr/bin/ipcfs"), "--version"); !strings.HasPrefix(out, "ipcfs ") {
		t.Errorf("installed ipcfs --version: %q", out)
	}
	if _, err := exec.LookPath("man"); err == nil {
		cmd := exec.Command("man", "-w", "ipcfs")
		cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(dest, "usr/share/man"))
		if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != filepath.Join(dest, "usr/share/man/man1/ipcfs.1") {
			t.Errorf("man -w ipcfs in the installed tree: %q, %v", out, err)
		}
	}
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func testMountHelp(t *testing.T) {
	for _, args := range [][]string{{"mount", "-h"}, {"mount", "--help"}} {
		out, stderr, err := runErr(bins.ipcfs, args...)
		if err != nil || stderr != "" {
			t.Errorf("ipcfs %q: %v, stderr %q; want exit 0 and nothing on stderr", args, err, stderr)
		}
		for _, f := range []string{"usage: ipcfs mount", "-allow-other", "-queue-bytes", "-log-file", "-log-format"} {
			if !strings.Contains(out, f) {
				t.Errorf("ipcfs %q stdout lacks %q:\n%s", args, f, out)
			}
		}
	}
	// An error still goes to stderr with exit 2.
	out, stderr, err := runErr(bins.ipcfs, "mount", "--bogus", "/x")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || out != "" || !strings.Contains(stderr, "-bogus") {
		t.Errorf("ipcfs mount --bogus: %v, stdout %q, stderr %q", err, out, stderr)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if out, _, err := runErr(bins.ipcfs, args...); err != nil || !regexp.MustCompile(`^ipcfs \S+\n$`).MatchString(out) {
			t.Errorf("ipcfs %q: %q, %v", args, out, err)
		}
	}
	if out, _, err := runErr(bins.ipcfs, "--help"); err != nil || !strings.Contains(out, "ipcfs ls") {
		t.Errorf("ipcfs --help: %q, %v", out, err)
	}
}

// testBazilLog puts a fusermount3 first on PATH that says something
// before it does its work: bazil logs that line with the standard log
// package, which must come out as a record of the daemon's JSON log.
func testBazilLog(t *testing.T) {
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	real, _ := exec.LookPath("fusermount3")
	dir := t.TempDir()
	wrapper := "#!/bin/sh\necho 'a word from fusermount3'\nexec " + real + ` "$@"` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "fusermount3"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(t.TempDir(), "ipc")
	cmd := exec.Command(bins.ipcfs, "mount", "--log-format", "json", mnt)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer exec.Command("fusermount3", "-u", "-z", mnt).Run()
	for deadline := time.Now().Add(hangTimeout); !strings.Contains(stderr.String(), `"msg":"mounted"`); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("not mounted:\n%s", stderr.String())
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := waitTimeout(cmd); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	found := false
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("not a JSON record: %q", l)
			continue
		}
		if strings.Contains(fmt.Sprint(rec["msg"]), "a word from fusermount3") {
			found = true
			if rec["component"] != "bazil.org/fuse" || rec["level"] != "warning" {
				t.Errorf("bazil's line: %v; want component bazil.org/fuse at warning", rec)
			}
		}
	}
	if !found {
		t.Errorf("no record of bazil's line in the log:\n%s", stderr.String())
	}
}

// testReadmeFirstCommands: the README's first two commands are scripts of
// the repository, run as they stand (a root shell has no sudo).
func testReadmeFirstCommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README has no sh block")
	}
	lines := strings.Split(strings.TrimSpace(string(m[1])), "\n")
	if len(lines) < 2 {
		t.Fatalf("README's first block: %q", lines)
	}
	for _, l := range lines[:2] {
		prog := strings.Fields(l)[0]
		fi, err := os.Stat(filepath.Join(repoRoot(t), prog))
		if err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("README command %q: %s is not an executable of the repository (%v)", l, prog, err)
		}
	}
}
