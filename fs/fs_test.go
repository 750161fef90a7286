package fs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"

	"bazil.org/fuse"

	"github.com/ipcfs/ipcfs/channels"
	"github.com/ipcfs/ipcfs/ctl"
	"github.com/ipcfs/ipcfs/shmregion"
)

func TestNodeIDRoundTrip(t *testing.T) {
	if got := nodeID(0, kindRoot); got != fuse.RootID {
		t.Fatalf("root's node ID is %v, want %v", got, fuse.RootID)
	}
	for _, serial := range []uint64{1, 2, 1000, 1<<40 + 3} {
		for k := kindDir; k <= kindStatus; k++ {
			s, gotK := splitNodeID(nodeID(serial, k))
			if s != serial || gotK != k {
				t.Errorf("split(nodeID(%d, %d)) = %d, %d", serial, k, s, gotK)
			}
		}
	}
}

func TestEntryKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind kind
		ok   bool
	}{
		{"msg", kindMsg, true}, {"shm", kindShm, true}, {"ctl", kindCtl, true},
		{"status", kindStatus, true}, {"Msg", 0, false}, {"", 0, false}, {"msg ", 0, false},
	} {
		k, ok := entryKind(tc.name)
		if k != tc.kind || ok != tc.ok {
			t.Errorf("entryKind(%q) = %v, %v; want %v, %v", tc.name, k, ok, tc.kind, tc.ok)
		}
	}
}

func TestToErrno(t *testing.T) {
	for _, tc := range []struct {
		err   error
		errno syscall.Errno
		level slog.Level
	}{
		{fmt.Errorf("read: %w", channels.ErrWouldBlock), syscall.EAGAIN, slog.LevelDebug},
		{fmt.Errorf("write: %w", channels.ErrHungUp), syscall.EPIPE, slog.LevelDebug},
		{channels.ErrClosed, syscall.EPIPE, slog.LevelDebug},
		{fmt.Errorf("x: %w", errInterrupted), syscall.EINTR, slog.LevelDebug},
		{fmt.Errorf("ctl: %w", fmt.Errorf("line 1: %w", ctl.ErrSyntax)), syscall.EINVAL, slog.LevelWarn},
		{fmt.Errorf("t: %w", shmregion.ErrTooLarge), syscall.EFBIG, slog.LevelWarn},
		{shmregion.ErrNegative, syscall.EINVAL, slog.LevelWarn},
		{errNotPermitted, syscall.EPERM, slog.LevelWarn},
		{errExists, syscall.EEXIST, slog.LevelWarn},
		{errNameTooLong, syscall.ENAMETOOLONG, slog.LevelWarn},
		{errNoEntry, syscall.ENOENT, slog.LevelDebug},
		{errReadOnly, syscall.EACCES, slog.LevelWarn},
		{errRemoved, syscall.EIO, slog.LevelDebug},
		{fmt.Errorf("memfd: %w", syscall.ENOMEM), syscall.ENOMEM, slog.LevelWarn},
		{errors.New("something unforeseen"), syscall.EIO, slog.LevelError},
		{io.EOF, syscall.EIO, slog.LevelError},
	} {
		errno, level := toErrno(tc.err)
		if errno != tc.errno || level != tc.level {
			t.Errorf("toErrno(%v) = %v, %v; want %v, %v", tc.err, errno, level, tc.errno, tc.level)
		}
	}
}

type fakeParked struct{ interrupted int }

func (f *fakeParked) interrupt() { f.interrupted++ }

func TestPendingRequests(t *testing.T) {
	p := newPendingRequests()

	// The usual order: the request parks, then its interrupt comes.
	a := &fakeParked{}
	if !p.add(1, a) {
		t.Fatal("add of a fresh request reported it interrupted")
	}
	p.interrupt(1)
	if a.interrupted != 1 || p.len() != 1 {
		t.Errorf("after interrupt: interrupted %d times, %d parked; want 1, 1 (it stays until answered)", a.interrupted, p.len())
	}
	p.remove(1)    // answered
	p.interrupt(1) // again: nothing left to interrupt
	if a.interrupted != 1 || p.len() != 0 {
		t.Errorf("an interrupt after the answer reached the request")
	}

	// The interrupt overtakes its request: remembered, then refused at add.
	p.interrupt(2)
	b := &fakeParked{}
	if p.add(2, b) {
		t.Error("add after an early interrupt should report it interrupted")
	}
	if b.interrupted != 0 || p.len() != 0 {
		t.Errorf("early-interrupted request: interrupted %d, parked %d; want 0, 0", b.interrupted, p.len())
	}
	if !p.add(2, b) {
		t.Error("an early interrupt must be used once only")
	}
	p.remove(2)

	// Answered requests are forgotten; a late interrupt finds nothing.
	c := &fakeParked{}
	p.add(3, c)
	p.remove(3)
	p.interrupt(3)
	if c.interrupted != 0 || p.len() != 0 {
		t.Errorf("interrupt after remove reached the request")
	}
}

func TestMsgWindow(t *testing.T) {
	msg := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}
	for _, tc := range []struct {
		name      string
		win       []byte
		start     int64
		off       int64
		size      int
		wantN     int  // bytes returned
		wantOK    bool // served from the window
		wantStart int  // index in the message of the first byte returned
	}{
		{"whole message", msg(10), 0, 0, 4096, 10, true, 0},
		{"first part", msg(10), 0, 0, 3, 3, true, 0},
		{"inside", msg(10), 0, 3, 3, 3, true, 3},
		{"last byte", msg(10), 0, 9, 3, 1, true, 9},
		{"at the end takes the next", msg(10), 0, 10, 3, 0, false, 0},
		{"before the window takes the next", msg(10), 100, 99, 3, 0, false, 0},
		{"window at an offset", msg(10), 100, 104, 100, 6, true, 4},
		{"no window", nil, 0, 0, 10, 0, false, 0},
		{"large read filled to the end is a byte short", msg(maxUnsplitRead + 100), 0, 0, maxUnsplitRead + 100, maxUnsplitRead + 99, true, 0},
		{"large read ending inside the message is whole", msg(1 << 20), 0, 0, maxUnsplitRead + 100, maxUnsplitRead + 100, true, 0},
		{"the last byte after a short large read", msg(maxUnsplitRead + 100), 0, maxUnsplitRead + 99, 1 << 20, 1, true, maxUnsplitRead + 99},
		{"small read filled exactly is whole", msg(maxUnsplitRead), 0, 0, maxUnsplitRead, maxUnsplitRead, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &msgHandle{win: tc.win, winStart: tc.start}
			got, ok := h.fromWindow(tc.off, tc.size)
			if ok != tc.wantOK || len(got) != tc.wantN {
				t.Fatalf("fromWindow(%d, %d) = %d bytes, %v; want %d, %v", tc.off, tc.size, len(got), ok, tc.wantN, tc.wantOK)
			}
			if ok && len(got) > 0 && got[0] != tc.win[tc.wantStart] {
				t.Errorf("first byte %d, want message byte %d", got[0], tc.wantStart)
			}
		})
	}
}

func TestDropWindowCountsUnread(t *testing.T) {
	q, err := channels.New(channels.Limits{MaxBytes: 1, MaxMsgs: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := &channel{queue: q.Queue()}
	h := &msgHandle{c: c, win: []byte("0123456789")}
	h.fromWindow(0, 4)
	if !h.dropWindow() {
		t.Error("a message read 4 of 10 bytes should count as truncated")
	}
	h = &msgHandle{c: c, win: []byte("0123456789")}
	h.fromWindow(0, 4)
	h.fromWindow(0, 100) // seek back and read it all
	if h.dropWindow() {
		t.Error("a message read to its end should not count as truncated")
	}
	if (&msgHandle{c: c}).dropWindow() {
		t.Error("no window, nothing truncated")
	}
}

func TestWindowHelper(t *testing.T) {
	data := []byte("hello world")
	for _, tc := range []struct {
		off  int64
		size int
		want string
	}{
		{0, 5, "hello"}, {6, 100, "world"}, {11, 5, ""}, {100, 5, ""}, {-1, 5, ""},
	} {
		if got := string(window(data, tc.off, tc.size)); got != tc.want {
			t.Errorf("window(%d, %d) = %q, want %q", tc.off, tc.size, got, tc.want)
		}
	}
}

func TestBufClasses(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{0, 0}, {1, 0}, {64, 0}, {65, 1}, {128, 1}, {129, 2},
		{4096, 6}, {65536, 10}, {131072, 11}, {1 << 20, 14}, {1<<20 + 1, -1},
	} {
		if got := bufClass(tc.n); got != tc.class {
			t.Errorf("bufClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
	}
	for _, n := range []int{1, 63, 64, 100, 4096, 131072, 1 << 20, 2 << 20} {
		b := getBuf(n)
		if len(b) != n {
			t.Fatalf("getBuf(%d) has length %d", n, len(b))
		}
		if n <= 1<<20 && cap(b)&(cap(b)-1) != 0 {
			t.Errorf("getBuf(%d) has capacity %d, not a size class", n, cap(b))
		}
		putBuf(b)
	}
	// Buffers not from getBuf must not get into a pool. Which pooled
	// buffer Get returns is sync.Pool's choice (and under -race it drops
	// a quarter of what is Put), so rather than look at one Get, put many
	// foreign buffers and empty the pool: with the check in putBuf gone,
	// hundreds come back (only a per-P private slot that another P holds
	// can escape the scan), so the test cannot pass by chance.
	const foreign = 1000
	for range foreign {
		putBuf(make([]byte, 10))
		putBuf(make([]byte, 10, 100)) // class 1 by size, not of its capacity
	}
	for c := range bufPools {
		for {
			v := bufPools[c].Get()
			if v == nil {
				break
			}
			if b := *v.(*[]byte); cap(b) != 1<<(c+minBufShift) {
				t.Fatalf("a foreign buffer got into pool %d: cap %d", c, cap(b))
			}
		}
	}
}
