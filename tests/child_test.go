package tests

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// child is a client process that speaks a line protocol: the test writes
// commands to its stdin, one a line, and reads its stdout a line at a
// time. It is the one harness under the four drivers — the fault prober
// (tests/soakclient probe), the shm peers, the Python client
// (clients/py/fdshell.py) and the bench clients (`ipcfs bench client`) —
// and every wait on it is bounded: a child that hangs fails the test that
// waited for it, it never hangs the run.
type child struct {
	t      testing.TB
	name   string // for messages: "probe", "C peer 2", …
	cmd    *exec.Cmd
	in     io.WriteCloser // its stdin
	lines  chan string    // its stdout, a line at a time without the "\n"; closed at end of output
	stderr lockedBuffer   // its stderr, unless the caller set cmd.Stderr

	waitOnce sync.Once
	exited   chan struct{} // closed once cmd.Wait has returned
	err      error         // cmd.Wait's result, once exited is closed
}

// startChild starts cmd (its Stdin and Stdout must be unset) as a child
// called name.
func startChild(t testing.TB, name string, cmd *exec.Cmd) *child {
	t.Helper()
	c := &child{t: t, name: name, cmd: cmd, lines: make(chan string, 100), exited: make(chan struct{})}
	if cmd.Stderr == nil {
		cmd.Stderr = &c.stderr
	}
	cmd.WaitDelay = 5 * time.Second // a grandchild holding stderr must not hang Wait
	var err error
	if c.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	// A pipe of our own rather than StdoutPipe: Wait does not close it, so
	// the lines a child wrote before exiting are all read.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatalf("starting %s %q: %v", name, cmd.Args, err)
	}
	go func() {
		defer r.Close()
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				c.lines <- strings.TrimSuffix(line, "\n")
			}
			if err != nil {
				close(c.lines)
				return
			}
		}
	}()
	return c
}

// sendLine writes one line to the child's stdin.
func (c *child) sendLine(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		c.t.Fatalf("%s: sending %q: %v; %s", c.name, line, err, c.exitReport())
	}
}

// readLine returns the child's next line of output, failing the test if
// the child ends its output first or writes nothing within hangTimeout;
// what names the awaited line in those messages.
func (c *child) readLine(what string) string {
	c.t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("%s ended its output before %s: %s", c.name, what, c.exitReport())
		}
		return l
	case <-time.After(hangTimeout):
		c.t.Fatalf("%s: no %s within %v (a hang)", c.name, what, hangTimeout)
	}
	return ""
}

// done returns a channel closed once the child has exited and been waited
// for; after that, waitExit returns at once.
func (c *child) done() <-chan struct{} {
	c.waitOnce.Do(func() {
		go func() {
			c.err = c.cmd.Wait()
			close(c.exited)
		}()
	})
	return c.exited
}

// waitExit waits up to timeout for the child to exit and returns Wait's
// result; exited is false if it still runs.
func (c *child) waitExit(timeout time.Duration) (exited bool, err error) {
	done := c.done()
	select {
	case <-done:
		return true, c.err
	default:
	}
	if timeout <= 0 {
		return false, nil
	}
	select {
	case <-done:
		return true, c.err
	case <-time.After(timeout):
		return false, nil
	}
}

// endInput closes the child's stdin (most drivers exit at end of input)
// and waits up to hangTimeout for it to exit.
func (c *child) endInput() (exited bool, err error) {
	c.in.Close()
	return c.waitExit(hangTimeout)
}

// killWait SIGKILLs the child and waits up to hangTimeout for it to die:
// a child whose request waits in a daemon that never answers it cannot
// die (it sleeps in state D), and then exited is false.
func (c *child) killWait() (exited bool, err error) {
	if c.cmd.Process != nil {
		c.cmd.Process.Kill()
	}
	c.in.Close()
	return c.waitExit(hangTimeout)
}

// drain discards the rest of the child's output, so that it never blocks
// writing to a test that stopped reading.
func (c *child) drain() {
	go func() {
		for range c.lines {
		}
	}()
}

// exitReport says how the child ended (waiting up to hangTimeout for it)
// and what it wrote to stderr.
func (c *child) exitReport() string {
	exited, err := c.waitExit(hangTimeout)
	how := "exited 0"
	var ee *exec.ExitError
	switch {
	case !exited:
		how = fmt.Sprintf("still running after %v", hangTimeout)
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			how = "killed by " + unix.SignalName(ws.Signal())
		} else {
			how = err.Error()
		}
	case err != nil:
		how = err.Error()
	}
	return fmt.Sprintf("%s; stderr:\n%s", how, c.stderr.String())
}
