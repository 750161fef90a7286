// Command ipcfs serves inter-process communication as files.
//
// Usage:
//
//	ipcfs mount [flags] MOUNTPOINT   serve in the foreground until SIGINT/SIGTERM
//	ipcfs bench [flags]              compare msg and shm with a pipe, a socket and /dev/shm
//	ipcfs version
//
// mkdir MOUNTPOINT/foo makes a channel with four files: msg (a write is a
// message, a read takes one), shm (truncate and mmap it MAP_SHARED), ctl
// (hangup, reopen, flush, queue-bytes N, queue-msgs N) and status
// (counters). See the README for the full contract.
package main

import (
	"fmt"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		usage()
		return 2
	}
	switch args[0] {
	case "mount":
		return mountCmd(args[1:])
	case "bench":
		return benchCmd(args[1:])
	case "version":
		fmt.Println("ipcfs", version())
		return 0
	case "help", "-h", "--help":
		usage()
		return 0
	}
	fmt.Fprintf(os.Stderr, "ipcfs: unknown command %q\n", args[0])
	usage()
	return 2
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  ipcfs mount [flags] MOUNTPOINT   serve in the foreground until SIGINT/SIGTERM
  ipcfs bench [flags]              benchmark msg and shm against a pipe, a socket, /dev/shm
  ipcfs version
Run "ipcfs mount -h" for the flags.
`)
}
