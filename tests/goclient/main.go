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
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: goclient read|readall|write|seq PATH ...")
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
	case "seq":
		if len(args) != 4 {
			return errors.New("usage: goclient seq PATH PREFIX N")
		}
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		msgs := make([]string, n)
		for i := range msgs {
			msgs[i] = fmt.Sprintf("%s-%06d", args[2], i)
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
