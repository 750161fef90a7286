package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	launcher "github.com/ipcfs/ipcfs/internal/daemon"
)

// cmdTests is the conformance map of the spec's command line.
var cmdTests = map[string]func(t *testing.T){
	"flags set every new channel's capacity":                                       testCapacityFlags,
	"text log: the mounted line":                                                   testTextLog,
	"ls -l sizes: msg 2^62 + bytes sent, ctl and status their length, shm its own": testListingSizes,
	"version":                         testVersion,
	"usage errors exit 2 and say why": testUsageErrors,
}

func TestCmd(t *testing.T) {
	for name, test := range cmdTests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t)
		})
	}
}

func testCapacityFlags(t *testing.T) {
	d := mount(t, "--queue-bytes", "1K", "--queue-msgs", "2")
	ch := d.channel("c")
	b, err := os.ReadFile(filepath.Join(ch, "ctl"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "queue-bytes 1024\nqueue-msgs 2\nhungup false\n"; string(b) != want {
		t.Errorf("ctl of a new channel:\n%s\nwant\n%s", b, want)
	}
	// The third message does not fit: a non-blocking write says so.
	out := sh(t, map[string]string{"CH": ch}, `
		echo 1 > "$CH/msg"; echo 2 > "$CH/msg"
		python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)
try:
    os.write(fd, b"3")
    print("written")
except BlockingIOError:
    print("EAGAIN")' "$CH/msg"`)
	if out != "EAGAIN\n" {
		t.Errorf("third message with --queue-msgs 2: %q, want EAGAIN", out)
	}
}

func testTextLog(t *testing.T) {
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	mnt := filepath.Join(t.TempDir(), "ipc")
	ld, err := launcher.Start(context.Background(), launcher.Config{
		Exe:          bins.ipcfs,
		Mountpoint:   mnt,
		Args:         []string{"--log-format", "text"},
		SysProcAttr:  &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM},
		MountTimeout: hangTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer runErr("fusermount3", "-u", "-z", mnt)
	if log := ld.Log(); !strings.Contains(log, `level=info msg=mounted mountpoint=`+mnt) {
		t.Errorf("no text line level=info msg=mounted mountpoint=%s in the log:\n%s", mnt, log)
	}
	if err := ld.Stop(syscall.SIGTERM, hangTimeout); err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0", err)
	}
}

func testListingSizes(t *testing.T) {
	d := mount(t)
	ch := d.channel("s")
	sh(t, map[string]string{"CH": ch}, `
		echo hello > "$CH/msg"; echo world > "$CH/msg"
		echo flush > "$CH/ctl"; echo hello > "$CH/msg"
		truncate -s 12345 "$CH/shm"`)
	// msg: 2^62 plus the bytes sent (12 here, "hello\n" twice and once
	// more); ctl and status: their content's length; shm: its own.
	want := map[string]int64{"msg": 1<<62 + 18, "shm": 12345}
	for _, name := range []string{"ctl", "status"} {
		content, err := os.ReadFile(filepath.Join(ch, name))
		if err != nil {
			t.Fatal(err)
		}
		want[name] = int64(len(content))
	}
	var wantLs strings.Builder
	for _, name := range []string{"ctl", "msg", "shm", "status"} {
		fi, err := os.Stat(filepath.Join(ch, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != want[name] {
			t.Errorf("%s: size %d, want %d", name, fi.Size(), want[name])
		}
		fmt.Fprintf(&wantLs, "%d %s\n", want[name], name)
	}
	// ls -l agrees (it is what the spec names).
	out := sh(t, map[string]string{"CH": ch}, `ls -l "$CH" | awk 'NR > 1 { print $5, $9 }'`)
	if out != wantLs.String() {
		t.Errorf("ls -l sizes:\n%s\nwant:\n%s", out, wantLs.String())
	}
}

func testVersion(t *testing.T) {
	out, _, err := runErr(bins.ipcfs, "version")
	if err != nil || !strings.HasPrefix(out, "ipcfs ") {
		t.Errorf("ipcfs version: %q, %v", out, err)
	}
}

func testUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{}, "usage"},
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"mount"}, "missing MOUNTPOINT"},
		{[]string{"mount", "--queue-msgs", "lots", dir + "/a"}, "queue-msgs"},
		{[]string{"mount", "--shm-max", "-1", dir + "/b"}, "shm-max"},
		{[]string{"mount", "--log-level", "loud", dir + "/c"}, "--log-level"},
		{[]string{"mount", "--log-format", "xml", dir + "/d"}, "--log-format"},
		{[]string{"mount", dir + "/e", "extra"}, "unexpected arguments"},
	} {
		_, stderr, err := runErr(bins.ipcfs, tc.args...)
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("ipcfs %q: %v, want exit status 2", tc.args, err)
		}
		if !strings.Contains(stderr, tc.says) {
			t.Errorf("ipcfs %q said %q; want it to mention %q", tc.args, stderr, tc.says)
		}
	}
	// Limits below one are refused before mounting.
	_, stderr, err := runErr(bins.ipcfs, "mount", "--queue-msgs", "0", dir+"/f")
	if err == nil || !strings.Contains(stderr, "at least 1") {
		t.Errorf("--queue-msgs 0: %v %q, want a refusal", err, stderr)
	}
}
