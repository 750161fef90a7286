package bench

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The clients' system calls in their timed loops. They are raw: Go's
// unix.Read enters the scheduler around the call (entersyscall), and a
// call that blocks longer than a sysmon tick loses its P and must get one
// back, which added 15-20 µs to a FUSE round trip. A client runs one
// goroutine with GODEBUG=asyncpreemptoff=1, so nothing else needs its P
// and no preemption signal interrupts its blocking calls.

func rawRead(fd int, p []byte) (int, error) {
	return rawIO(unix.SYS_READ, fd, p, 0, false)
}

func rawWrite(fd int, p []byte) (int, error) {
	return rawIO(unix.SYS_WRITE, fd, p, 0, false)
}

func rawPread(fd int, p []byte, off int64) (int, error) {
	return rawIO(unix.SYS_PREAD64, fd, p, off, true)
}

func rawIO(trap uintptr, fd int, p []byte, off int64, withOff bool) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n uintptr
	var e unix.Errno
	// The pointer conversions stay in the call expressions: that keeps
	// p's memory alive and in place for the call.
	if withOff {
		n, _, e = unix.RawSyscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(off), 0, 0)
	} else {
		n, _, e = unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	}
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// clientEnv is what a client process's environment adds.
const clientEnv = "GODEBUG=asyncpreemptoff=1"

// clientsKind says what the clients are, for the report.
const clientsKind = "Go processes making raw system calls (RawSyscall: read, write, pread) with GODEBUG=asyncpreemptoff=1"
