// Command copyclient copies a channel's file the way a Go program does,
// with io.Copy from an *os.File, so the tests see what Go's fast paths do
// with msg, ctl and status: to a TCP connection io.Copy uses sendfile(2)
// (through (*os.File).WriteTo or (*net.TCPConn).ReadFrom) and falls back to
// Read and Write when sendfile refuses; to a regular file it tries
// copy_file_range(2) and splice(2) first.
//
// Usage:
//
//	copyclient tcp PATH ADDR    io.Copy(conn, file) to a TCP connection to ADDR, then close it
//	copyclient file PATH DST    io.Copy(dst, file) to a new regular file DST
//
// Either prints "copied N" (the count io.Copy returned) and exits 0, or
// prints the error to stderr and exits 1.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "copyclient:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 3 {
		return errors.New("usage: copyclient tcp PATH ADDR | file PATH DST")
	}
	src, err := os.Open(args[1])
	if err != nil {
		return err
	}
	defer src.Close()
	var dst io.WriteCloser
	switch args[0] {
	case "tcp":
		dst, err = net.Dial("tcp", args[2])
	case "file":
		dst, err = os.Create(args[2])
	default:
		return fmt.Errorf("unknown mode %q", args[0])
	}
	if err != nil {
		return err
	}
	n, err := io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", n, err)
	}
	fmt.Println("copied", n)
	return nil
}
