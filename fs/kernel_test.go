package fs

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"bazil.org/fuse"
	"golang.org/x/sys/unix"

	"github.com/ipcfs/ipcfs/channels"
)

// fakeKernel plays the kernel's side of a FUSE connection over a
// SOCK_SEQPACKET socket pair: it sends raw requests, as the kernel lays them
// out (protocol 7.33), to a Server serving the other end, and collects the
// replies by request ID. Transcript tests drive the dispatcher with it, with
// no mount.
type fakeKernel struct {
	t       *testing.T
	s       *Server
	fd      int
	next    uint64
	replies chan reply
	pending map[uint64]reply // replies read but not yet asked for
}

type reply struct {
	id    uint64
	errno syscall.Errno
	data  []byte
}

// replyTimeout turns a missing reply into a failure; it is no bound on speed.
const replyTimeout = 10 * time.Second

func newFakeKernel(t *testing.T) *fakeKernel {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	dev := os.NewFile(uintptr(fds[1]), "fake /dev/fuse")
	s := newServer(Config{Limits: channels.Limits{MaxBytes: 1 << 20, MaxMsgs: 4}, ShmMax: 1 << 20}, fuse.NewConn(dev))
	go s.Serve()
	k := &fakeKernel{t: t, s: s, fd: fds[0], replies: make(chan reply, 64), pending: map[uint64]reply{}}
	go k.readReplies()
	t.Cleanup(func() {
		unix.Shutdown(k.fd, unix.SHUT_RDWR) // the serving loops read end of file
		<-s.served
		unix.Close(k.fd)
		dev.Close()
	})
	return k
}

func (k *fakeKernel) readReplies() {
	buf := make([]byte, 1<<21)
	for {
		n, err := unix.Read(k.fd, buf)
		if err != nil || n == 0 {
			close(k.replies)
			return
		}
		if n < 16 {
			continue
		}
		r := reply{
			id:    binary.LittleEndian.Uint64(buf[8:16]),
			errno: syscall.Errno(-int32(binary.LittleEndian.Uint32(buf[4:8]))),
			data:  append([]byte(nil), buf[16:n]...),
		}
		if r.id == 0 {
			continue // a notification (poll wakeup, invalidation)
		}
		k.replies <- r
	}
}

// send sends a request of opcode about node, from thread pid, with the
// given body, and returns its ID.
func (k *fakeKernel) send(opcode uint32, node uint64, pid uint32, body ...[]byte) uint64 {
	k.t.Helper()
	k.next++
	var msg []byte
	for _, b := range body {
		msg = append(msg, b...)
	}
	hdr := make([]byte, 40)
	binary.LittleEndian.PutUint32(hdr[0:], uint32(40+len(msg)))
	binary.LittleEndian.PutUint32(hdr[4:], opcode)
	binary.LittleEndian.PutUint64(hdr[8:], k.next)
	binary.LittleEndian.PutUint64(hdr[16:], node)
	binary.LittleEndian.PutUint32(hdr[32:], pid)
	if _, err := unix.Write(k.fd, append(hdr, msg...)); err != nil {
		k.t.Fatalf("sending opcode %d: %v", opcode, err)
	}
	return k.next
}

// reply waits for the reply to request id.
func (k *fakeKernel) reply(id uint64) reply {
	k.t.Helper()
	if r, ok := k.pending[id]; ok {
		delete(k.pending, id)
		return r
	}
	deadline := time.After(replyTimeout)
	for {
		select {
		case r, ok := <-k.replies:
			if !ok {
				k.t.Fatalf("connection closed waiting for the reply to %d", id)
			}
			if r.id == id {
				return r
			}
			k.pending[r.id] = r
		case <-deadline:
			k.t.Fatalf("no reply to request %d", id)
		}
	}
}

// ok waits for a successful reply to id and returns its payload.
func (k *fakeKernel) ok(id uint64) []byte {
	k.t.Helper()
	r := k.reply(id)
	if r.errno != 0 {
		k.t.Fatalf("request %d: %v, want success", id, r.errno)
	}
	return r.data
}

// parked waits until n requests are parked in the server.
func (k *fakeKernel) parked(n int) {
	k.t.Helper()
	deadline := time.Now().Add(replyTimeout)
	for k.s.Stats().Parked != n {
		if time.Now().After(deadline) {
			k.t.Fatalf("%d requests parked, want %d", k.s.Stats().Parked, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func le32(vs ...uint32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return b
}

func le64(vs ...uint64) []byte {
	b := make([]byte, 8*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	return b
}

func cstr(s string) []byte { return append([]byte(s), 0) }

// Requests, as the kernel lays them out.

const (
	opLookup    = 1
	opMkdir     = 9
	opRmdir     = 11
	opOpen      = 14
	opRead      = 15
	opWrite     = 16
	opInterrupt = 36
	readLockOwn = 1 << 1 // FUSE_READ_LOCKOWNER
)

func (k *fakeKernel) mkdir(name string) uint64 {
	k.t.Helper()
	return binary.LittleEndian.Uint64(k.ok(k.send(opMkdir, 1, 0, le32(0o755, 0), cstr(name))))
}

func (k *fakeKernel) lookup(dir uint64, name string) uint64 {
	k.t.Helper()
	return binary.LittleEndian.Uint64(k.ok(k.send(opLookup, dir, 0, cstr(name))))
}

func (k *fakeKernel) open(node uint64, flags uint32) uint64 {
	k.t.Helper()
	return binary.LittleEndian.Uint64(k.ok(k.send(opOpen, node, 0, le32(flags, 0))))
}

// read sends a READ as read(2) does (with a lock owner) unless pageCache.
func (k *fakeKernel) read(node, fh uint64, off uint64, size uint32, pid uint32, pageCache bool) uint64 {
	flags := uint32(readLockOwn)
	if pageCache {
		flags = 0
	}
	return k.send(opRead, node, pid, le64(fh, off), le32(size, flags), le64(7), le32(0, 0))
}

func (k *fakeKernel) write(node, fh uint64, off uint64, data string, fileFlags uint32) uint64 {
	return k.send(opWrite, node, 0, le64(fh, off), le32(uint32(len(data)), 0), le64(7), le32(fileFlags, 0), []byte(data))
}

func (k *fakeKernel) interrupt(id uint64) {
	k.send(opInterrupt, 0, 0, le64(id))
}

// msgFile makes a channel and opens its msg with flags.
func (k *fakeKernel) msgFile(name string, flags uint32) (node, fh uint64) {
	dir := k.mkdir(name)
	node = k.lookup(dir, "msg")
	return node, k.open(node, flags)
}

// The transcripts.

func TestTranscriptHandOff(t *testing.T) {
	k := newFakeKernel(t)
	node, fh := k.msgFile("a", uint32(os.O_RDWR))
	r := k.read(node, fh, 0, 100, 0, false)
	k.parked(1)
	w := k.write(node, fh, 0, "hello", 0)
	if got := string(k.ok(r)); got != "hello" {
		t.Errorf("the parked READ got %q, want the WRITE's message", got)
	}
	if n := binary.LittleEndian.Uint32(k.ok(w)); n != 5 {
		t.Errorf("WRITE answered %d bytes, want 5", n)
	}
	k.parked(0)
}

func TestTranscriptInterruptBeforeAndAfterPark(t *testing.T) {
	k := newFakeKernel(t)
	node, fh := k.msgFile("a", uint32(os.O_RDONLY))
	// Parked, then interrupted (pid 0: no thread to consult, EINTR).
	r := k.read(node, fh, 0, 100, 0, false)
	k.parked(1)
	k.interrupt(r)
	if e := k.reply(r).errno; e != syscall.EINTR {
		t.Errorf("interrupted parked READ: %v, want EINTR", e)
	}
	// Interrupted before it parks: the INTERRUPT comes first.
	k.interrupt(k.next + 2) // the INTERRUPT itself is next+1
	r = k.read(node, fh, 0, 100, 0, false)
	if e := k.reply(r).errno; e != syscall.EINTR {
		t.Errorf("READ interrupted before it parked: %v, want EINTR", e)
	}
	// Neither took a message: the next one goes to the next reader.
	k.ok(k.write(node, fh, 0, "m", 0))
	if got := string(k.ok(k.read(node, fh, 1000, 100, 0, false))); got != "m" {
		t.Errorf("after the interrupts: %q, want m", got)
	}
}

func TestTranscriptStoppedThreadStaysParked(t *testing.T) {
	k := newFakeKernel(t)
	node, fh := k.msgFile("a", uint32(os.O_RDONLY))
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Process.Kill()
	sleeper.Process.Signal(syscall.SIGSTOP)
	pid := uint32(sleeper.Process.Pid)
	waitState(t, sleeper.Process.Pid, 'T')

	r := k.read(node, fh, 0, 100, pid, false)
	k.parked(1)
	k.interrupt(r) // as the kernel does on SIGSTOP
	// A stopped thread with nothing pending: the READ stays parked.
	time.Sleep(3 * signalRecheck)
	k.parked(1)
	// SIGTERM stays pending on a stopped process and would kill it: EINTR.
	sleeper.Process.Signal(syscall.SIGTERM)
	if e := k.reply(r).errno; e != syscall.EINTR {
		t.Errorf("after SIGTERM to the stopped thread: %v, want EINTR", e)
	}
	k.parked(0)
}

func TestTranscriptRmdirAndHangupWhileParked(t *testing.T) {
	k := newFakeKernel(t)
	node, fh := k.msgFile("a", uint32(os.O_RDWR))
	r := k.read(node, fh, 0, 100, 0, false)
	k.parked(1)
	k.ok(k.send(opRmdir, 1, 0, cstr("a")))
	if r := k.reply(r); r.errno != 0 || len(r.data) != 0 {
		t.Errorf("READ parked across rmdir: %v %q, want end of file", r.errno, r.data)
	}

	node, fh = k.msgFile("b", uint32(os.O_RDWR))
	ctl := k.open(k.lookup(k.lookup(1, "b"), "ctl"), uint32(os.O_WRONLY))
	k.ok(k.write(node, fh, 0, "one", 0))
	for range 3 {
		k.ok(k.write(node, fh, 0, "fill", 0))
	}
	w := k.write(node, fh, 0, "waits", 0) // queue-msgs 4: full
	k.parked(1)
	k.ok(k.send(opWrite, 0, 0, le64(ctl, 0), le32(7, 0), le64(7), le32(0, 0), []byte("hangup\n")))
	if e := k.reply(w).errno; e != syscall.EPIPE {
		t.Errorf("WRITE parked across hangup: %v, want EPIPE", e)
	}
	if got := string(k.ok(k.read(node, fh, 0, 100, 0, false))); got != "one" {
		t.Errorf("after hangup, readers drain: %q, want one", got)
	}
}

func TestTranscriptPageCacheReadIsRefused(t *testing.T) {
	k := newFakeKernel(t)
	node, fh := k.msgFile("a", uint32(os.O_RDWR))
	k.ok(k.write(node, fh, 0, "keep", 0))
	if e := k.reply(k.read(node, fh, 0, 4096, 0, true)).errno; e != syscall.EINVAL {
		t.Errorf("page-cache READ of msg: %v, want EINVAL", e)
	}
	if got := string(k.ok(k.read(node, fh, 0, 100, 0, false))); got != "keep" {
		t.Errorf("after the refused READ: %q, want the message still there", got)
	}
}

func TestTranscriptMsgLookupsAreInstances(t *testing.T) {
	k := newFakeKernel(t)
	dir := k.mkdir("a")
	m1, m2 := k.lookup(dir, "msg"), k.lookup(dir, "msg")
	if m1 != m2 || m1&msgInstanceBit == 0 {
		t.Errorf("two lookups of msg with no open between gave nodes %#x and %#x, want one instance", m1, m2)
	}
	k.open(m1, uint32(os.O_RDONLY))
	if m3 := k.lookup(dir, "msg"); m3 == m1 || m3&msgInstanceBit == 0 {
		t.Errorf("a lookup after an open of %#x gave %#x, want a new instance", m1, m3)
	}
	if c1, c2 := k.lookup(dir, "ctl"), k.lookup(dir, "ctl"); c1 != c2 {
		t.Errorf("two lookups of ctl gave nodes %#x and %#x, want one", c1, c2)
	}
}

// waitState waits until process pid is in state (a /proc/PID/stat letter).
func waitState(t *testing.T, pid int, state byte) {
	t.Helper()
	deadline := time.Now().Add(replyTimeout)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == state {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d never reached state %c", pid, state)
		}
		time.Sleep(time.Millisecond)
	}
}
