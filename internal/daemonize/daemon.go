// Package daemonize starts a program in the background and waits until it
// says it is ready, the way a forking daemon's parent does (Go cannot
// fork: the parent starts a fresh copy of the program instead).
//
// The parent calls Start; the child finds its Notifier with FromEnv and
// calls Ready once it serves, or Fail if it cannot. Until then the parent
// waits, so a caller such as mount(8) sees the outcome as the parent's
// exit status and the child's reason on the parent's stderr.
package daemonize

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// envFD names the child's end of the readiness pipe.
const envFD = "IPCFS_DAEMON_FD"

// Start starts cmd as a daemon in a session of its own (no terminal
// signals reach it) and waits until it calls Ready, returning the
// warnings it sent before; or until it exits or calls Fail, returning its
// reason as the error. cmd.Stdin, Stdout and Stderr are /dev/null unless
// set. cmd.Env, if set, should not hold NOTIFY_SOCKET: the caller's
// service manager is not the daemon's.
func Start(cmd *exec.Cmd) (warnings []string, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", envFD, 3+len(cmd.ExtraFiles)))
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	err = cmd.Start()
	w.Close()
	if err != nil {
		return nil, err
	}
	var reason []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		kind, text, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "READY":
			cmd.Process.Release()
			return warnings, nil
		case "WARN":
			warnings = append(warnings, text)
		default:
			reason = append(reason, text)
		}
	}
	werr := cmd.Wait()
	if len(reason) > 0 {
		return warnings, errors.New(strings.Join(reason, "; "))
	}
	if werr == nil {
		werr = errors.New("exited before it was ready")
	}
	return warnings, fmt.Errorf("daemon: %w", werr)
}

// A Notifier is the child's end of the readiness pipe.
type Notifier struct {
	w io.WriteCloser
}

// FromEnv returns the Notifier of a child started by Start, and removes
// its variable from the environment (the daemon's own children are not
// daemons); nil if this process was not started by Start.
func FromEnv() *Notifier {
	v, ok := os.LookupEnv(envFD)
	if !ok {
		return nil
	}
	os.Unsetenv(envFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	unix.CloseOnExec(fd)
	return &Notifier{w: os.NewFile(uintptr(fd), "daemon-ready")}
}

// Warn passes a line to the parent, which prints it. Nil-safe.
func (n *Notifier) Warn(text string) {
	if n != nil && n.w != nil {
		fmt.Fprintf(n.w, "WARN %s\n", oneLine(text))
	}
}

// Ready lets the parent exit 0. Nil-safe; only the first Ready or Fail counts.
func (n *Notifier) Ready() { n.finish("READY ") }

// Fail lets the parent exit with reason as its error. Nil-safe.
func (n *Notifier) Fail(reason string) { n.finish("FAIL " + oneLine(reason)) }

func (n *Notifier) finish(line string) {
	if n == nil || n.w == nil {
		return
	}
	fmt.Fprintln(n.w, line)
	n.w.Close()
	n.w = nil
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
