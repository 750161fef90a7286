// Command ipcfs serves inter-process communication as files.
//
// Usage:
//
//	ipcfs mount [flags] MOUNTPOINT     serve in the foreground until SIGINT/SIGTERM
//	ipcfs SOURCE MOUNTPOINT -o OPTS    the mount(8)/fstab form: daemonizes once mounted
//	ipcfs ls [--json] [MOUNTPOINT...]  every channel of the named (or every) ipcfs mount
//	ipcfs bench [flags]                compare msg and shm with a pipe, a socket, the FUSE floor, /dev/shm
//	ipcfs version | --version
//
// mkdir MOUNTPOINT/foo makes a channel with four files: msg (a write is a
// message, a read takes one), shm (truncate and mmap it MAP_SHARED), ctl
// (hangup, reopen, flush, queue-bytes N, queue-msgs N) and status
// (counters). Every flag of ipcfs mount is also a mount option, its name
// with "_" for "-" (queue_bytes=32M). Under systemd (Type=notify) the
// daemon sends READY=1 once mounted and STOPPING=1 on shutdown. See
// ipcfs(1), ipcfs(7) and the README for the full contract.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ipcfs/ipcfs/internal/mountopts"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return 2
	}
	switch args[0] {
	case "mount":
		return mountCmd(args[1:], foreground)
	case "ls":
		return lsCmd(args[1:])
	case "bench":
		return benchCmd(args[1:])
	case "version", "--version":
		fmt.Println("ipcfs", version())
		return 0
	case "help", "-h", "--help":
		usage(os.Stdout)
		return 0
	}
	if mountopts.LooksLikeHelper(args) {
		return mountCmd(args, helperForm)
	}
	fmt.Fprintf(os.Stderr, "ipcfs: unknown command %q\n", args[0])
	usage(os.Stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  ipcfs mount [flags] MOUNTPOINT     serve in the foreground until SIGINT/SIGTERM
  ipcfs SOURCE MOUNTPOINT -o OPTS    the mount(8)/fstab form: daemonizes once mounted
  ipcfs ls [--json] [MOUNTPOINT...]  every channel of the named (or every) ipcfs mount
  ipcfs bench [flags]                msg and shm against a pipe, a socket, the FUSE floor, /dev/shm
  ipcfs version | --version
Run "ipcfs mount -h" for the flags; see ipcfs(1) and ipcfs(7).
`)
}

// usageError handles a failed flags.Parse (the set's output discarded, its
// Usage a no-op): -h prints usage and the flags to stdout (exit 0); any
// other error says why on stderr, then the same (exit 2).
func usageError(flags *flag.FlagSet, err error, usage string) int {
	w, code := os.Stderr, 2
	if errors.Is(err, flag.ErrHelp) {
		w, code = os.Stdout, 0
	} else {
		fmt.Fprintf(os.Stderr, "%s: %v\n", flags.Name(), err)
	}
	fmt.Fprintln(w, usage)
	flags.SetOutput(w)
	flags.PrintDefaults()
	flags.SetOutput(io.Discard)
	return code
}
