// Command goclient is the Go client of the integration tests: it uses a
// channel's files the way a Go program does, with os.Open and Read, which
// puts the file in non-blocking mode under Go's edge-triggered epoll — so
// it needs ipcfs's poll support to ever wake up.
//
// Usage:
//
//	goclient read PATH N         read N messages, print each quoted on a line
//	goclient readall PATH        read messages until end of file
//	goclient write PATH MSG...   write each MSG as one message
//	goclient seq PATH PREFIX N   write N messages PREFIX-000000 … PREFIX-N-1
//	goclient seqkeep PATH PREFIX N
//	                             the same, going on after a failed write: it
//	                             prints "failed MSG: ERROR" for each
//	goclient pollread PATH       read one message as os.File.Read does, printing
//	                             each event on a line: "read-eagain" for each read
//	                             that found nothing (the goroutine then waits in
//	                             the runtime's epoll), "read-ready" and the
//	                             quoted message for the read that got it
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: goclient read|readall|write|seq|pollread PATH [ARG]")
	}
	cmd, path := args[0], args[1]
	switch cmd {
	case "read", "readall":
		n := -1
		if cmd == "read" {
			if len(args) != 3 {
				return errors.New("usage: goclient read PATH N")
			}
			var err error
			if n, err = strconv.Atoi(args[2]); err != nil {
				return err
			}
		}
		return read(path, n)
	case "write":
		return write(path, args[2:])
	case "pollread":
		return pollRead(path)
	case "seq", "seqkeep":
		if len(args) != 4 {
			return errors.New("usage: goclient seq|seqkeep PATH PREFIX N")
		}
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		msgs := make([]string, n)
		for i := range msgs {
			msgs[i] = fmt.Sprintf("%s-%06d", args[2], i)
		}
		if cmd == "seqkeep" {
			return writeKeepGoing(path, msgs)
		}
		return write(path, msgs)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// read reads n messages (all until end of file if n < 0).
func read(path string, n int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	for i := 0; n < 0 || i < n; i++ {
		k, err := f.Read(buf)
		if err == io.EOF {
			if n < 0 {
				return nil
			}
			return fmt.Errorf("end of file after %d of %d messages", i, n)
		}
		if err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		fmt.Println(strconv.Quote(string(buf[:k])))
	}
	return nil
}

func write(path string, msgs []string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	for i, m := range msgs {
		if _, err := f.Write([]byte(m)); err != nil {
			f.Close()
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
	return f.Close()
}

// writeKeepGoing writes each message, reporting the failed ones.
func writeKeepGoing(path string, msgs []string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if _, err := f.Write([]byte(m)); err != nil {
			fmt.Printf("failed %s: %v\n", m, err)
		}
	}
	return f.Close()
}

// pollRead reads one message the way os.File.Read does — read(2) on the
// non-blocking file, and on EAGAIN wait for epoll to report it readable —
// through SyscallConn, so that each step can be printed as it happens.
func pollRead(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			// Go's preemption signals interrupt raw system calls.
			if n, rerr = syscall.Read(int(fd), buf); rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			fmt.Println("read-eagain")
			return false // wait until epoll says it is readable
		}
		return true
	})
	if err != nil {
		return err
	}
	if rerr != nil {
		return rerr
	}
	fmt.Println("read-ready", strconv.Quote(string(buf[:n])))
	return nil
}
