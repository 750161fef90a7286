// Command soakclient is the Go client of the robustness tests (faults,
// bad input, permissions, containers, soak). It makes raw system calls
// through golang.org/x/sys/unix, so a test sees the exact errno the kernel
// and ipcfs return, and it retries EINTR, which Go's preemption signals
// cause on blocking calls.
//
// Usage:
//
//	soakclient probe                          run commands read from stdin, one a line
//	soakclient churn DIR PREFIX N             create, use and remove N channels
//	soakclient soak-write PATH ID DURATION SEED raw|file
//	soakclient soak-read PATH SEED raw|file
//
// # probe
//
// Each line of stdin is a command; its arguments are separated by spaces,
// and an argument may be a Go-quoted string ("a b\n"). Each command prints
// exactly one line: "ok", "ok VALUE", or the name of the errno it failed
// with ("EPERM"), or "error TEXT" for anything else. Commands:
//
//	umask OCT                 mkdir PATH OCT        rmdir PATH
//	unlink PATH               rename OLD NEW        link OLD NEW
//	symlink TARGET PATH       mknod PATH (a FIFO)   creat PATH
//	truncate PATH SIZE        chmod PATH OCT        chown PATH UID GID
//	stat PATH    → ok type=dir|file|other mode=OCT uid=N gid=N size=N
//	ls PATH      → ok NAME... (quoted, sorted, without . and ..)
//	open FD PATH FLAGS        FLAGS: r, w or rw, then ,nonblock ,creat ,trunc
//	read FD N    → ok "DATA"  (ok "" is end of file)
//	pread FD N OFF            lseek FD OFF (from the start)
//	write FD DATA → ok N      pwrite FD DATA OFF
//	writefill FD N PATTERN    one write(2) of N bytes repeating PATTERN
//	writejunk FD N SEED       one write(2) of N pseudo-random bytes
//	ftruncate FD SIZE         nonblock FD on|off     close FD
//	echo TEXT    → ok TEXT    (a marker to synchronize on)
//
// FD is a name the test chooses for an open file.
//
// # churn
//
// Creates DIR/PREFIX0 … DIR/PREFIX(N-1) one at a time; in each it writes
// and reads a message, reads status, sets ctl, grows and writes shm, and
// removes the channel (every fourth time with msg still open, closed after
// the rmdir). Prints "ok N".
//
// # soak-write and soak-read
//
// See soak.go.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
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
	var err error
	switch args := os.Args[2:]; os.Args[1] {
	case "probe":
		err = probe()
	case "churn":
		if len(args) != 3 {
			usage()
		}
		err = churn(args[0], args[1], atoi(args[2]))
	case "soak-write":
		if len(args) != 5 {
			usage()
		}
		err = soakWrite(args)
	case "soak-read":
		if len(args) != 3 {
			usage()
		}
		err = soakRead(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soakclient:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: soakclient probe | churn DIR PREFIX N | soak-write PATH ID DURATION SEED raw|file | soak-read PATH SEED raw|file")
	os.Exit(2)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soakclient:", err)
		os.Exit(2)
	}
	return n
}

// errName is the errno name of err ("EPERM"), or "error TEXT".
func errName(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
		return fmt.Sprintf("errno%d", int(errno))
	}
	return "error " + strings.ReplaceAll(err.Error(), "\n", " ")
}

// retry calls f until it fails with something other than EINTR.
func retry(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// splitArgs splits a probe line into arguments; an argument starting with
// a double quote is a Go-quoted string.
func splitArgs(line string) ([]string, error) {
	var args []string
	for {
		line = strings.TrimLeft(line, " ")
		if line == "" {
			return args, nil
		}
		if line[0] == '"' {
			q, err := strconv.QuotedPrefix(line)
			if err != nil {
				return nil, fmt.Errorf("bad quoted argument at %q", line)
			}
			s, _ := strconv.Unquote(q)
			args = append(args, s)
			line = line[len(q):]
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		args = append(args, word)
		line = rest
	}
}

func probe() error {
	fds := map[string]int{}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	for sc.Scan() {
		args, err := splitArgs(sc.Text())
		var res string
		if err == nil && len(args) > 0 {
			res, err = probeCmd(fds, args)
		} else if err == nil {
			continue
		}
		switch {
		case err != nil:
			fmt.Fprintln(out, errName(err))
		case res != "":
			fmt.Fprintln(out, "ok", res)
		default:
			fmt.Fprintln(out, "ok")
		}
		out.Flush()
	}
	return sc.Err()
}

func oct(s string) uint32 {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		panic(fmt.Sprintf("bad octal %q", s))
	}
	return uint32(n)
}

func i64(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("bad number %q", s))
	}
	return n
}

// probeCmd runs one probe command.
func probeCmd(fds map[string]int, a []string) (res string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v (command %q)", r, a)
		}
	}()
	need := map[string]int{
		"umask": 2, "mkdir": 3, "rmdir": 2, "unlink": 2, "rename": 3, "link": 3,
		"symlink": 3, "mknod": 2, "creat": 2, "truncate": 3, "chmod": 3,
		"chown": 4, "stat": 2, "ls": 2, "open": 4, "read": 3, "pread": 4,
		"lseek": 3, "write": 3, "pwrite": 4, "writefill": 4, "writejunk": 4,
		"ftruncate": 3, "nonblock": 3, "close": 2, "echo": 2,
	}
	if n, ok := need[a[0]]; !ok || n != len(a) {
		return "", fmt.Errorf("bad command %q", a)
	}
	fd := func() int {
		f, ok := fds[a[1]]
		if !ok {
			panic(fmt.Sprintf("no open file %q", a[1]))
		}
		return f
	}
	switch a[0] {
	case "umask":
		unix.Umask(int(oct(a[1])))
		return "", nil
	case "mkdir":
		return "", unix.Mkdir(a[1], oct(a[2]))
	case "rmdir":
		return "", unix.Rmdir(a[1])
	case "unlink":
		return "", unix.Unlink(a[1])
	case "rename":
		return "", unix.Rename(a[1], a[2])
	case "link":
		return "", unix.Link(a[1], a[2])
	case "symlink":
		return "", unix.Symlink(a[1], a[2])
	case "mknod":
		return "", unix.Mknod(a[1], unix.S_IFIFO|0o644, 0)
	case "creat":
		f, err := unix.Open(a[1], unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
		if err == nil {
			unix.Close(f)
		}
		return "", err
	case "truncate":
		return "", unix.Truncate(a[1], i64(a[2]))
	case "chmod":
		return "", unix.Chmod(a[1], oct(a[2]))
	case "chown":
		return "", unix.Chown(a[1], int(i64(a[2])), int(i64(a[3])))
	case "stat":
		var st unix.Stat_t
		if err := unix.Stat(a[1], &st); err != nil {
			return "", err
		}
		typ := "other"
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			typ = "dir"
		case unix.S_IFREG:
			typ = "file"
		}
		return fmt.Sprintf("type=%s mode=%04o uid=%d gid=%d size=%d", typ, st.Mode&0o7777, st.Uid, st.Gid, st.Size), nil
	case "ls":
		ents, err := os.ReadDir(a[1])
		if err != nil {
			return "", err
		}
		var names []string
		for _, e := range ents {
			names = append(names, strconv.Quote(e.Name()))
		}
		sort.Strings(names)
		return strings.Join(names, " "), nil
	case "open":
		flags := unix.O_CLOEXEC
		mode, opts, _ := strings.Cut(a[3], ",")
		switch mode {
		case "r":
			flags |= unix.O_RDONLY
		case "w":
			flags |= unix.O_WRONLY
		case "rw":
			flags |= unix.O_RDWR
		default:
			panic("bad open mode " + mode)
		}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "":
			case "nonblock":
				flags |= unix.O_NONBLOCK
			case "creat":
				flags |= unix.O_CREAT
			case "trunc":
				flags |= unix.O_TRUNC
			default:
				panic("bad open flag " + o)
			}
		}
		var f int
		err := retry(func() (err error) { f, err = unix.Open(a[2], flags, 0o644); return err })
		if err != nil {
			return "", err
		}
		if old, ok := fds[a[1]]; ok {
			unix.Close(old)
		}
		fds[a[1]] = f
		return "", nil
	case "read", "pread":
		buf := make([]byte, i64(a[2]))
		var n int
		err := retry(func() (err error) {
			if a[0] == "read" {
				n, err = unix.Read(fd(), buf)
			} else {
				n, err = unix.Pread(fd(), buf, i64(a[3]))
			}
			return err
		})
		if err != nil {
			return "", err
		}
		return strconv.Quote(string(buf[:n])), nil
	case "lseek":
		off, err := unix.Seek(fd(), i64(a[2]), 0)
		return strconv.FormatInt(off, 10), err
	case "write", "pwrite", "writefill", "writejunk":
		var data []byte
		switch a[0] {
		case "write", "pwrite":
			data = []byte(a[2])
		case "writefill":
			data = []byte(strings.Repeat(a[3], int(i64(a[2]))/len(a[3])+1)[:i64(a[2])])
		case "writejunk":
			r := rand.New(rand.NewPCG(uint64(i64(a[3])), 1))
			data = make([]byte, i64(a[2]))
			for i := range data {
				data[i] = byte(r.Uint32())
			}
		}
		var n int
		err := retry(func() (err error) {
			if a[0] == "pwrite" {
				n, err = unix.Pwrite(fd(), data, i64(a[3]))
			} else {
				n, err = unix.Write(fd(), data)
			}
			return err
		})
		return strconv.Itoa(n), err
	case "ftruncate":
		return "", unix.Ftruncate(fd(), i64(a[2]))
	case "nonblock":
		return "", unix.SetNonblock(fd(), a[2] == "on")
	case "close":
		err := unix.Close(fd())
		delete(fds, a[1])
		return "", err
	case "echo":
		return a[1], nil
	}
	panic("unreachable")
}

// churn creates, uses and removes n channels, one at a time.
func churn(dir, prefix string, n int) error {
	for i := range n {
		ch := fmt.Sprintf("%s/%s%d", dir, prefix, i)
		if err := churnOne(ch, i%4 == 0); err != nil {
			return fmt.Errorf("channel %d: %w", i, err)
		}
	}
	fmt.Println("ok", n)
	return nil
}

func churnOne(ch string, keepOpen bool) error {
	if err := unix.Mkdir(ch, 0o755); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	msg, err := unix.Open(ch+"/msg", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open msg: %w", err)
	}
	if err := retry(func() error { _, err := unix.Write(msg, []byte("churn message")); return err }); err != nil {
		return fmt.Errorf("write msg: %w", err)
	}
	buf := make([]byte, 5) // a partial read: the remainder is discarded at close
	if err := retry(func() error { _, err := unix.Read(msg, buf); return err }); err != nil {
		return fmt.Errorf("read msg: %w", err)
	}
	// One more message stays queued, discarded by rmdir.
	if err := retry(func() error { _, err := unix.Write(msg, []byte("left behind")); return err }); err != nil {
		return fmt.Errorf("write msg: %w", err)
	}
	if err := os.WriteFile(ch+"/ctl", []byte("queue-msgs 8\nqueue-bytes 1K\n"), 0); err != nil {
		return fmt.Errorf("ctl: %w", err)
	}
	if _, err := os.ReadFile(ch + "/status"); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	shm, err := unix.Open(ch+"/shm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open shm: %w", err)
	}
	if err := unix.Ftruncate(shm, 64<<10); err != nil {
		return fmt.Errorf("ftruncate shm: %w", err)
	}
	if _, err := unix.Pwrite(shm, []byte("shared"), 4096); err != nil {
		return fmt.Errorf("pwrite shm: %w", err)
	}
	unix.Close(shm)
	if !keepOpen {
		unix.Close(msg)
	}
	if err := unix.Rmdir(ch); err != nil {
		return fmt.Errorf("rmdir: %w", err)
	}
	if keepOpen {
		unix.Close(msg)
	}
	return nil
}
