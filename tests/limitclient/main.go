// Command limitclient is the client of the limits tests: it makes many
// channels, fills them, and reports what happened as counts of results.
// Results are "ok" or errno names, so a test sees exact errnos.
//
// Usage:
//
//	limitclient mkdirs DIR PREFIX N [SHMSIZE]
//	    mkdir DIR/PREFIX0 … PREFIX(N-1), truncating each shm to SHMSIZE
//	    (if given); prints "mkdir RESULT=COUNT… truncate RESULT=COUNT…"
//	limitclient cycles DIR PREFIX N
//	    N times: mkdir, open msg, write a message, rmdir, close
//	limitclient fill CHANNEL SIZE
//	    non-blocking writes of SIZE bytes to CHANNEL/msg until one fails;
//	    prints "sent N RESULT"
//	limitclient grow CHANNEL STEP
//	    truncate CHANNEL/shm up by STEP until it fails; prints "size N RESULT"
//	limitclient fillshm CHANNEL
//	    write 1 MiB chunks to CHANNEL/shm until one fails; prints "size N RESULT"
//	limitclient attack DIR PREFIX N msg|shm
//	    make N channels, set queue-bytes 1G, and fill each with 64 KiB
//	    messages (msg) or its shm (shm) until refused; prints counts:
//	    "mkdir R=N… ctl R=N… fill R=N…"
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	a := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "mkdirs":
		if len(a) != 3 && len(a) != 4 {
			usage()
		}
		shm := int64(-1)
		if len(a) == 4 {
			shm = num(a[3])
		}
		err = mkdirs(a[0], a[1], int(num(a[2])), shm)
	case "cycles":
		if len(a) != 3 {
			usage()
		}
		err = cycles(a[0], a[1], int(num(a[2])))
	case "fill":
		if len(a) != 2 {
			usage()
		}
		err = fill(a[0], int(num(a[1])))
	case "grow":
		if len(a) != 2 {
			usage()
		}
		err = grow(a[0], num(a[1]))
	case "fillshm":
		if len(a) != 1 {
			usage()
		}
		err = fillShm(a[0])
	case "attack":
		if len(a) != 4 || (a[3] != "msg" && a[3] != "shm") {
			usage()
		}
		err = attack(a[0], a[1], int(num(a[2])), a[3] == "shm")
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "limitclient:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: limitclient mkdirs DIR PREFIX N [SHMSIZE] | cycles DIR PREFIX N | fill CHANNEL SIZE | grow CHANNEL STEP | fillshm CHANNEL")
	os.Exit(2)
}

func num(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "limitclient:", err)
		os.Exit(2)
	}
	return n
}

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
	}
	return "error"
}

func retry(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

type counts map[string]int

func (c counts) String() string {
	var keys []string
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, c[k])
	}
	return b.String()
}

func mkdirs(dir, prefix string, n int, shm int64) error {
	mk, tr := counts{}, counts{}
	for i := range n {
		ch := fmt.Sprintf("%s/%s%d", dir, prefix, i)
		err := unix.Mkdir(ch, 0o755)
		mk[errName(err)]++
		if err != nil || shm < 0 {
			continue
		}
		tr[errName(retry(func() error { return unix.Truncate(ch+"/shm", shm) }))]++
	}
	fmt.Printf("mkdir %v truncate %v\n", mk, tr)
	return nil
}

func cycles(dir, prefix string, n int) error {
	for i := range n {
		ch := fmt.Sprintf("%s/%s%d", dir, prefix, i)
		if err := unix.Mkdir(ch, 0o755); err != nil {
			return fmt.Errorf("cycle %d: mkdir: %w", i, err)
		}
		fd, err := unix.Open(ch+"/msg", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("cycle %d: open: %w", i, err)
		}
		if err := retry(func() error { _, err := unix.Write(fd, []byte("left in the queue")); return err }); err != nil {
			return fmt.Errorf("cycle %d: write: %w", i, err)
		}
		if err := unix.Rmdir(ch); err != nil {
			return fmt.Errorf("cycle %d: rmdir: %w", i, err)
		}
		unix.Close(fd)
	}
	fmt.Println("ok", n)
	return nil
}

func fill(ch string, size int) error {
	fd, err := unix.Open(ch+"/msg", unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	sent := 0
	for {
		err := retry(func() error { _, err := unix.Write(fd, buf); return err })
		if err != nil {
			fmt.Printf("sent %d %s\n", sent, errName(err))
			return nil
		}
		sent++
	}
}

func grow(ch string, step int64) error {
	size := int64(0)
	for {
		err := retry(func() error { return unix.Truncate(ch+"/shm", size+step) })
		if err != nil {
			fmt.Printf("size %d %s\n", size, errName(err))
			return nil
		}
		size += step
	}
}

// fillShm writes 1 MiB chunks to CHANNEL/shm from offset 0 on until a
// write fails; prints "size N RESULT".
func fillShm(ch string) error {
	fd, err := unix.Open(ch+"/shm", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	off := int64(0)
	for {
		var n int
		err := retry(func() (err error) { n, err = unix.Pwrite(fd, buf, off); return err })
		off += int64(max(n, 0))
		if err != nil {
			fmt.Printf("size %d %s\n", off, errName(err))
			return nil
		}
	}
}

func attack(dir, prefix string, n int, shm bool) error {
	mk, ctl, fill := counts{}, counts{}, counts{}
	buf := make([]byte, 64<<10)
	for i := range n {
		ch := fmt.Sprintf("%s/%s%d", dir, prefix, i)
		err := unix.Mkdir(ch, 0o700)
		mk[errName(err)]++
		if err != nil {
			continue
		}
		ctl[errName(os.WriteFile(ch+"/ctl", []byte("queue-bytes 1G\n"), 0))]++
		if shm {
			fd, err := unix.Open(ch+"/shm", unix.O_WRONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				fill["open:"+errName(err)]++
				continue
			}
			for off := int64(0); ; off += int64(len(buf)) {
				if err := retry(func() error { _, err := unix.Pwrite(fd, buf, off); return err }); err != nil {
					fill[errName(err)]++
					break
				}
			}
			unix.Close(fd)
			continue
		}
		fd, err := unix.Open(ch+"/msg", unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			fill["open:"+errName(err)]++
			continue
		}
		for {
			if err := retry(func() error { _, err := unix.Write(fd, buf[:60<<10]); return err }); err != nil {
				fill[errName(err)]++
				break
			}
		}
		unix.Close(fd)
	}
	fmt.Printf("mkdir %v ctl %v fill %v\n", mk, ctl, fill)
	return nil
}
