package daemonize

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play the daemon: IPCFS_DAEMON_TEST says how.
func TestMain(m *testing.M) {
	if how := os.Getenv("IPCFS_DAEMON_TEST"); how != "" {
		child(how)
		return
	}
	os.Exit(m.Run())
}

func child(how string) {
	n := FromEnv()
	if _, still := os.LookupEnv(envFD); still || n == nil {
		os.Exit(3)
	}
	switch how {
	case "ready":
		n.Warn("no syslog\nhere")
		n.Ready()
		n.Fail("too late") // ignored
		// Prove the session is our own, then stay alive a little as a daemon does.
		sid, pid := mustSid(), os.Getpid()
		os.WriteFile(os.Getenv("IPCFS_DAEMON_OUT"), []byte(strings.Join([]string{itoa(sid), itoa(pid)}, " ")), 0o644)
		time.Sleep(100 * time.Millisecond)
	case "fail":
		n.Fail("mount /x: no such device")
		os.Exit(1)
	case "exit":
		os.Exit(4)
	}
}

func TestReady(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "IPCFS_DAEMON_TEST=ready", "IPCFS_DAEMON_OUT="+out)
	warnings, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(warnings, []string{"no syslog here"}) {
		t.Errorf("warnings %q", warnings)
	}
	// The child wrote its session and pid before sleeping; wait for the file.
	var b []byte
	for deadline := time.Now().Add(30 * time.Second); len(b) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		b, _ = os.ReadFile(out)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] != f[1] {
		t.Errorf("child session and pid %q: want a session of its own", b)
	}
}

func TestFail(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "IPCFS_DAEMON_TEST=fail")
	if _, err := Start(cmd); err == nil || err.Error() != "mount /x: no such device" {
		t.Errorf("Start of a failing child: %v", err)
	}
}

func TestExitWithoutWord(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "IPCFS_DAEMON_TEST=exit")
	if _, err := Start(cmd); err == nil || !strings.Contains(err.Error(), "exit status 4") {
		t.Errorf("Start of a child that exits: %v", err)
	}
}

func TestNotADaemon(t *testing.T) {
	if n := FromEnv(); n != nil {
		t.Fatal("FromEnv in a process not started by Start")
	}
	var n *Notifier
	n.Warn("x")
	n.Ready()
	n.Fail("x")
}
