package fs

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The kernel sends INTERRUPT for a waiting request whenever its thread
// gets a signal — including SIGSTOP, a ptrace attach and the cgroup
// freezer, after which a pipe's reader just carries on. A daemon cannot
// answer "restart the call" (FUSE rejects errors at or below -512), so the
// only way to give a stopped reader a pipe's behaviour is not to answer
// until the wait ends or a signal that matters arrives. The thread then
// sleeps killably in the kernel: SIGKILL still ends it, and anything
// caught or fatal is seen by re-reading its signal state.

// signalsEndWait reports whether the thread tid, whose request the kernel
// has interrupted, should be answered EINTR now: it has a pending
// unblocked signal that it catches or that would kill it, or it is an
// io_uring worker (canceled with no signal at all), or its state cannot
// be read (gone, or in a pid namespace the daemon cannot see).
func signalsEndWait(tid uint32) bool {
	if tid == 0 {
		return true
	}
	status, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return true
	}
	var name string
	var pending, shared, blocked, ignored, caught uint64
	for line := range bytes.Lines(status) {
		key, val, ok := strings.Cut(strings.TrimSpace(string(line)), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		mask := func() uint64 { m, _ := strconv.ParseUint(val, 16, 64); return m }
		switch key {
		case "Name":
			name = val
		case "SigPnd":
			pending = mask()
		case "ShdPnd":
			shared = mask()
		case "SigBlk":
			blocked = mask()
		case "SigIgn":
			ignored = mask()
		case "SigCgt":
			caught = mask()
		}
	}
	if isRingWorkerName(name) {
		return true
	}
	return endsWait((pending|shared)&^blocked, ignored, caught)
}

// endsWait reports whether any signal in the pending set (bit n-1 for
// signal n) is SIGKILL, caught, or fatal by default and not ignored.
func endsWait(pending, ignored, caught uint64) bool {
	for sig := 1; sig <= 64; sig++ {
		bit := uint64(1) << (sig - 1)
		switch {
		case pending&bit == 0:
		case sig == int(unix.SIGKILL), caught&bit != 0:
			return true
		case ignored&bit != 0, harmlessByDefault(sig):
		default:
			return true
		}
	}
	return false
}

// harmlessByDefault reports whether a signal's default action leaves the
// process running: it stops, continues, or is ignored.
func harmlessByDefault(sig int) bool {
	switch unix.Signal(sig) {
	case unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU,
		unix.SIGCONT, unix.SIGCHLD, unix.SIGURG, unix.SIGWINCH:
		return true
	}
	return false
}

// isRingThread reports whether thread tid is reading for io_uring: an
// io_uring worker (which runs a ring's blocking reads, IOSQE_ASYNC), or a
// thread inside io_uring_enter (which issues reads of files that poll
// ready inline, and runs the task work of the others).
func isRingThread(tid uint32) bool {
	proc := "/proc/" + strconv.FormatUint(uint64(tid), 10)
	if comm, err := os.ReadFile(proc + "/comm"); err == nil && isRingWorkerName(strings.TrimSpace(string(comm))) {
		return true
	}
	sc, err := os.ReadFile(proc + "/syscall")
	nr, _, _ := strings.Cut(string(sc), " ")
	return err == nil && nr == strconv.Itoa(unix.SYS_IO_URING_ENTER)
}

// isRingWorkerName: io-wq workers are "iou-wrk-PID", SQPOLL threads "iou-sqp-PID".
func isRingWorkerName(name string) bool {
	return strings.HasPrefix(name, "iou-wrk-") || strings.HasPrefix(name, "iou-sqp-")
}
