// Command shmclient is the Go client of the shared-memory tests: it uses a
// channel's shm file the way a Go program does, with os.OpenFile and
// golang.org/x/sys/unix's Mmap.
//
// Usage:
//
//	shmclient peer
//	shmclient recipe PATH SIZE CHECKSEED FILLSEED
//
// peer reads commands from stdin, one a line, and answers each with one
// line on stdout, exactly as `shmtool peer` (tests/clients/shmtool.c) does:
// "ok", "ok VALUE", "err ERRNAME" (a system call failed) or "bad WHY".
// The commands are shmtool's:
//
//	open PATH r|rw|rwc     os.OpenFile; rwc is O_RDWR|O_CREATE, mode 0666
//	truncate N             (*os.File).Truncate
//	truncpath PATH N       os.Truncate
//	size                   (*os.File).Stat: "ok SIZE"
//	map LEN                unix.Mmap(MAP_SHARED, PROT_READ|PROT_WRITE)
//	fill OFF LEN SEED      store the pattern through the mapping
//	check OFF LEN SEED     compare the mapping with the pattern
//	pwrite OFF LEN SEED    WriteAt the pattern
//	pread OFF LEN SEED     ReadAt and compare
//	read OFF LEN SEED      Seek, then Read and compare
//	msync                  unix.Msync(MS_SYNC)
//	unmap                  unix.Munmap
//	close                  (*os.File).Close (a mapping stays)
//
// recipe is the POSIX shared-memory recipe with only the path changed:
// open (O_RDWR|O_CREATE), Truncate, Mmap, Close; then it compares the
// region with CHECKSEED's pattern ("-": don't), stores FILLSEED's ("-":
// don't), unmaps and prints "ok".
//
// The pattern of seed S is the sequence of little-endian 64-bit words
// w[i] = (i * 0x9E3779B97F4A7C15) XOR (S * 0xD1B54A32D192ED03), i = offset/8;
// seed 0 is all zeros.
//
// A fault in the mapping (SIGBUS past the end of the file) is answered
// "bad fault: …" rather than crashing.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 2 && os.Args[1] == "peer":
		err = peer(os.Stdin, os.Stdout)
	case len(os.Args) == 6 && os.Args[1] == "recipe":
		err = recipe(os.Args[2], os.Args[3], os.Args[4], os.Args[5])
	default:
		err = errors.New("usage: shmclient peer | shmclient recipe PATH SIZE CHECKSEED FILLSEED")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shmclient:", err)
		os.Exit(1)
	}
}

const (
	k     = 0x9E3779B97F4A7C15
	c     = 0xD1B54A32D192ED03
	chunk = 1 << 20
)

// pattern returns bytes [off, off+n) of seed's pattern.
func pattern(off, n, seed uint64) []byte {
	p := make([]byte, n)
	if seed == 0 {
		return p
	}
	var w [8]byte
	for i := uint64(0); i < n; {
		o := off + i
		binary.LittleEndian.PutUint64(w[:], (o>>3)*k^seed*c)
		i += uint64(copy(p[i:], w[o&7:]))
	}
	return p
}

// difference returns "" if got (the bytes at off) is seed's pattern, else
// why not.
func difference(got []byte, off, seed uint64) string {
	want := pattern(off, uint64(len(got)), seed)
	if bytes.Equal(got, want) {
		return ""
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("bad at %d: got 0x%02x want 0x%02x", off+uint64(i), got[i], want[i])
		}
	}
	return ""
}

type state struct {
	f *os.File
	m []byte
}

func peer(in io.Reader, out io.Writer) error {
	debug.SetPanicOnFault(true)
	var st state
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		words := strings.Fields(sc.Text())
		if len(words) == 0 {
			continue
		}
		if _, err := fmt.Fprintln(out, st.answer(words)); err != nil {
			return err
		}
	}
	return sc.Err()
}

// answer runs one command and returns its answer line.
func (st *state) answer(words []string) (reply string) {
	defer func() {
		if r := recover(); r != nil {
			reply = fmt.Sprintf("bad fault: %v", r)
		}
	}()
	err := st.do(words, &reply)
	var errno unix.Errno
	switch {
	case err == nil:
		return reply
	case errors.As(err, &errno):
		return "err " + unix.ErrnoName(errno)
	default:
		return "bad " + err.Error()
	}
}

func (st *state) do(words []string, reply *string) error {
	*reply = "ok"
	cmd, args := words[0], words[1:]
	switch cmd {
	case "open":
		if len(args) != 2 {
			return errors.New("usage: open PATH r|rw|rwc")
		}
		flags := map[string]int{"r": os.O_RDONLY, "rw": os.O_RDWR, "rwc": os.O_RDWR | os.O_CREATE}[args[1]]
		if st.f != nil {
			st.f.Close()
			st.f = nil
		}
		f, err := os.OpenFile(args[0], flags, 0o666)
		if err != nil {
			return err
		}
		st.f = f
		return nil
	case "truncpath":
		if len(args) != 2 {
			return errors.New("usage: truncpath PATH N")
		}
		n, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return err
		}
		return os.Truncate(args[0], n)
	}
	nums := make([]int64, len(args))
	for i, a := range args {
		var err error
		if nums[i], err = strconv.ParseInt(a, 10, 64); err != nil {
			return err
		}
	}
	switch cmd {
	case "truncate", "size", "map", "pwrite", "pread", "read", "close":
		if st.f == nil {
			return errors.New("no open file")
		}
	case "fill", "check", "msync", "unmap":
		if st.m == nil {
			return errors.New("no mapping")
		}
	}
	switch {
	case cmd == "truncate" && len(nums) == 1:
		return st.f.Truncate(nums[0])
	case cmd == "size":
		fi, err := st.f.Stat()
		if err != nil {
			return err
		}
		*reply = fmt.Sprintf("ok %d", fi.Size())
		return nil
	case cmd == "map" && len(nums) == 1:
		m, err := unix.Mmap(int(st.f.Fd()), 0, int(nums[0]), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return err
		}
		if st.m != nil {
			unix.Munmap(st.m)
		}
		st.m = m
		return nil
	case cmd == "close":
		err := st.f.Close()
		st.f = nil
		return err
	case (cmd == "pwrite" || cmd == "pread" || cmd == "read") && len(nums) == 3:
		why, err := st.xfer(cmd, uint64(nums[0]), uint64(nums[1]), uint64(nums[2]))
		if why != "" {
			*reply = why
		}
		return err
	case (cmd == "fill" || cmd == "check") && len(nums) == 3:
		off, n, seed := uint64(nums[0]), uint64(nums[1]), uint64(nums[2])
		if off > uint64(len(st.m)) || n > uint64(len(st.m))-off {
			return errors.New("range outside the mapping")
		}
		if cmd == "fill" {
			copy(st.m[off:], pattern(off, n, seed))
			return nil
		}
		for done := uint64(0); done < n; done += chunk {
			end := min(n, done+chunk)
			if why := difference(st.m[off+done:off+end], off+done, seed); why != "" {
				*reply = why
				return nil
			}
		}
		return nil
	case cmd == "msync":
		return unix.Msync(st.m, unix.MS_SYNC)
	case cmd == "unmap":
		err := unix.Munmap(st.m)
		st.m = nil
		return err
	}
	return fmt.Errorf("unknown command %s", strings.Join(words, " "))
}

// xfer does pwrite, pread or read of [off, off+n) in chunks; it returns a
// "bad …" answer for wrong bytes, or an error.
func (st *state) xfer(how string, off, n, seed uint64) (string, error) {
	if how == "read" {
		if _, err := st.f.Seek(int64(off), io.SeekStart); err != nil {
			return "", err
		}
	}
	buf := make([]byte, chunk)
	for done := uint64(0); done < n; {
		b := buf[:min(chunk, n-done)]
		var r int
		var err error
		switch how {
		case "pwrite":
			r, err = st.f.WriteAt(pattern(off+done, uint64(len(b)), seed), int64(off+done))
		case "pread":
			r, err = st.f.ReadAt(b, int64(off+done))
		case "read":
			r, err = st.f.Read(b)
		}
		if how != "pwrite" {
			if why := difference(b[:r], off+done, seed); why != "" {
				return why, nil
			}
			if r == 0 && err == io.EOF {
				return fmt.Sprintf("bad %s: end of file at %d, before %d", how, off+done, off+n), nil
			}
			if err == io.EOF {
				err = nil
			}
		}
		if err != nil {
			return "", err
		}
		done += uint64(r)
	}
	return "", nil
}

// recipe is what a shm_open program does, with a path instead of a name.
func recipe(path, sizeArg, checkSeed, fillSeed string) error {
	size, err := strconv.Atoi(sizeArg)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return err
	}
	if err := f.Truncate(int64(size)); err != nil {
		return err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if checkSeed != "-" {
		seed, err := strconv.ParseUint(checkSeed, 10, 64)
		if err != nil {
			return err
		}
		if why := difference(m, 0, seed); why != "" {
			return errors.New("recipe: " + why)
		}
	}
	if fillSeed != "-" {
		seed, err := strconv.ParseUint(fillSeed, 10, 64)
		if err != nil {
			return err
		}
		copy(m, pattern(0, uint64(size), seed))
	}
	if err := unix.Munmap(m); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	fmt.Println("ok")
	return nil
}
