package fs

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"bazil.org/fuse"

	"github.com/ipcfs/ipcfs/channels"
)

// msgHandle is an open msg file. A write is one message; a read takes from
// one message. The message being read is a window at file offsets
// [winStart, winStart+len(win)): reads inside it return its bytes without
// consuming anything (pread, and lseek back, re-read); a read anywhere else
// takes the next message, which then occupies [offset, offset+length).
type msgHandle struct {
	s             *Server
	c             *channel
	reads, writes bool // open for reading, for writing
	watch         channels.PollWatch

	// mu guards the window. It is held while a READ is answered from the
	// window, because the window's buffer is recycled when it is dropped.
	mu       sync.Mutex
	win      []byte       // GUARDED_BY(mu); the current message (a getBuf buffer); nil before the first
	winStart int64        // GUARDED_BY(mu); its file offset
	winSeen  int          // GUARDED_BY(mu); how many of its bytes reads have returned (high-water mark)
	rings    [4]ringCheck // GUARDED_BY(mu); the last threads checked by readsFromRing
	nextRing int          // GUARDED_BY(mu); the entry of rings to replace next
	endPos   int64        // GUARDED_BY(mu); offset of the last read at the end of the file (see read)

	// The last READ answered with data, for io_uring's retries (see
	// ringRetry): its offset and size, the bytes it got, and whether an
	// io_uring retry of it is due (poll then reports it readable).
	lastOff  int64 // GUARDED_BY(mu)
	lastSize int   // GUARDED_BY(mu)
	lastN    int   // GUARDED_BY(mu)
	retryDue bool  // GUARDED_BY(mu)

	pollMu sync.Mutex      // guards wakeup and polled
	wakeup fuse.PollWakeup // GUARDED_BY(pollMu)
	polled bool            // GUARDED_BY(pollMu); wakeup is set
}

var (
	_ requestReader = (*msgHandle)(nil)
	_ requestWriter = (*msgHandle)(nil)
	_ poller        = (*msgHandle)(nil)
	_ directFile    = (*msgHandle)(nil)
)

func (h *msgHandle) directIO() {}

func newMsgHandle(s *Server, c *channel, read, write bool) *msgHandle {
	h := &msgHandle{s: s, c: c, reads: read, writes: write}
	h.watch = c.queue.NewPollWatch(h.wake)
	c.queue.Opened(read, write)
	return h
}

func (h *msgHandle) read(req *fuse.ReadRequest) error {
	h.mu.Lock()
	h.retryDue = false
	if h.ringRetry(req) {
		h.lastN = 0
		h.mu.Unlock()
		req.Respond(&fuse.ReadResponse{}) // the read(2) it belongs to ends here
		return nil
	}
	off := req.Offset
	if h.win != nil && off == h.winStart && h.winSeen > 0 && h.readsFromRing(req.Pid) {
		// The kernel never advances the file position for io_uring's reads
		// (FUSE's fuse_direct_IO works on a copy): each read of a ring with
		// offset -1 comes at the same offset. Such a read goes on where the
		// last one stopped.
		off += int64(h.winSeen)
	}
	if data, ok := h.fromWindow(off, req.Size); ok {
		h.answered(req, len(data))
		req.Respond(&fuse.ReadResponse{Data: data})
		h.mu.Unlock()
		return nil
	}
	// Offsets in the upper half of msg's size are reached only by seeking
	// to the end: tail, and tools like it, do that to show what a file
	// already holds, reading backwards from its end. A queue has no past:
	// there, a read that does not move forward is end of file and takes
	// nothing, and one that does takes a message only if one is queued.
	// So tail -f prints what comes, and takes nothing it would not print.
	atEnd := off >= msgSize/2
	if atEnd {
		back := h.endPos == 0 || off < h.endPos
		h.endPos = off
		if back {
			h.mu.Unlock()
			req.Respond(&fuse.ReadResponse{})
			return nil
		}
	}
	truncated := h.dropWindow()
	h.mu.Unlock()
	if truncated {
		h.c.queue.CountTruncated()
	}

	// Most reads find a message queued, or none and O_NONBLOCK: no waiter needed.
	msg, err := h.c.queue.TryReceive()
	wait := req.FileFlags&fuse.OpenNonblock == 0 && !atEnd
	switch {
	case err == channels.ErrDeferred:
		return h.park(req, parkedRead{h, req, wait, atEnd})
	case err == channels.ErrWouldBlock && atEnd:
		req.Respond(&fuse.ReadResponse{}) // end of file, for now
		return nil
	case err != channels.ErrWouldBlock || !wait:
		h.deliver(req, msg, err)
		return nil
	}
	return h.park(req, parkedRead{h, req, true, false})
}

// deliver answers a READ that took msg (or err) from the channel.
func (h *msgHandle) deliver(req *fuse.ReadRequest, msg []byte, err error) {
	switch {
	case errors.Is(err, io.EOF):
		req.Respond(&fuse.ReadResponse{})
	case err != nil:
		h.s.fail(req, err)
	default:
		h.mu.Lock()
		truncated := h.dropWindow() // only if two reads of this handle waited at once
		h.win, h.winStart = msg, req.Offset
		data, _ := h.fromWindow(req.Offset, req.Size)
		h.answered(req, len(data))
		// The window is in place before the answer: a continuation READ of
		// the same read(2) finds it.
		req.Respond(&fuse.ReadResponse{Data: data})
		h.mu.Unlock()
		h.c.queue.Delivered(msg)
		if truncated {
			h.c.queue.CountTruncated()
		}
	}
}

// fromWindow returns the bytes of the current message at off, if off is
// inside it. Requires h.mu.
func (h *msgHandle) fromWindow(off int64, size int) ([]byte, bool) {
	if h.win == nil || off < h.winStart || off >= h.winStart+int64(len(h.win)) {
		return nil, false
	}
	rel := int(off - h.winStart)
	end := min(len(h.win), rel+size)
	if end == len(h.win) && end-rel == size && size > maxUnsplitRead {
		// A READ this large may be one chunk of a bigger read(2); filled
		// exactly to the message's end, the kernel would ask for more at
		// the next offset, and that would start the next message (or wait
		// for one, with data in hand). A byte short, the read(2) ends here.
		end--
	}
	h.winSeen = max(h.winSeen, end)
	return h.win[rel:end], true
}

// maxUnsplitRead is the largest READ that is always a whole read(2): the
// kernel cuts a read(2) into READs where the caller's buffer crosses
// max_pages (256) pages, so only READs above 255 pages can be followed by
// more of the same read(2). A write(2) of up to 255 pages and one byte
// always arrives as one WRITE, hence one message (MaxAtomicWrite).
const maxUnsplitRead = (maxPages - 1) * pageSize

// The kernel's page size, and the most pages one request carries (the
// bazil copy negotiates max_pages 256 and max_write 1 MiB).
const (
	pageSize = 4096
	maxPages = 256
)

// MaxAtomicWrite is the largest write(2) or writev(2) that is always one
// message, whatever the alignment of the caller's buffer: 1,044,481 bytes,
// 1 MiB - 4 KiB + 1 (a writev whose buffers touch at most 256 pages).
const MaxAtomicWrite = maxUnsplitRead + 1

// readsFromRing reports whether thread pid reads for io_uring (a worker,
// or a thread inside io_uring_enter), remembering the last answer.
// Requires h.mu.
//
// It is asked on every short answer, from whichever thread reads: a Go
// reader's reads come from several threads, and each check reads /proc,
// so the answers of the last few threads are kept.
func (h *msgHandle) readsFromRing(pid uint32) bool {
	for _, r := range h.rings {
		if r.pid == pid && pid != 0 {
			return r.ring
		}
	}
	r := ringCheck{pid: pid, ring: isRingThread(pid)}
	h.rings[h.nextRing] = r
	h.nextRing = (h.nextRing + 1) % len(h.rings)
	return r.ring
}

// ringCheck is what readsFromRing found about one thread.
type ringCheck struct {
	pid  uint32
	ring bool
}

// answered notes that req is answered with n bytes. Requires h.mu.
func (h *msgHandle) answered(req *fuse.ReadRequest, n int) {
	h.lastOff, h.lastSize, h.lastN = req.Offset, req.Size, n
	// io_uring asks again for the rest of a buffer that a read on a
	// regular file did not fill, once the file polls readable.
	h.retryDue = n > 0 && n < req.Size && h.readsFromRing(req.Pid)
}

// ringRetry reports whether req is io_uring's retry of the last READ,
// which a message did not fill: it comes at the same offset (the position
// is never advanced) for the rest of the buffer. It must get 0 bytes, so
// that the read ends with one message, as a read(2) does. Requires h.mu.
func (h *msgHandle) ringRetry(req *fuse.ReadRequest) bool {
	return h.lastN > 0 && h.lastN < h.lastSize && req.Offset == h.lastOff &&
		req.Size == h.lastSize-h.lastN && h.readsFromRing(req.Pid)
}

// dropWindow ends the current message, recycling its buffer, and reports
// whether some of it was never read. Requires h.mu.
func (h *msgHandle) dropWindow() (truncated bool) {
	truncated = h.win != nil && h.winSeen < len(h.win)
	if h.win != nil {
		h.c.queue.Done(h.win) // its memory charge (limits.go)
		putBuf(h.win)
	}
	h.win, h.winSeen = nil, 0
	return truncated
}

func (h *msgHandle) write(req *fuse.WriteRequest) error {
	// The request's buffer is reused once it is answered: the channel gets
	// a copy, recycled when a reader's window moves past it.
	msg := getBuf(len(req.Data))
	copy(msg, req.Data)
	// Most writes find room, or a waiting reader: no waiter needed.
	err := h.c.queue.TrySend(msg)
	wait := req.FileFlags&fuse.OpenNonblock == 0
	if err == channels.ErrDeferred || err == channels.ErrWouldBlock && wait {
		return h.park(req, parkedWrite{h, req, msg, wait})
	}
	if err != nil {
		putBuf(msg)
	}
	h.sent(req, len(msg), err)
	return nil
}

// sent answers a WRITE of n bytes whose message was sent, or not, with err.
func (h *msgHandle) sent(req *fuse.WriteRequest, n int, err error) {
	if err != nil {
		h.s.fail(req, err)
		return
	}
	h.c.sentBytes.Add(int64(n))
	h.c.lastSent.Store(time.Now().UnixNano())
	req.Respond(&fuse.WriteResponse{Size: n})
}

// waitingOp is what a parked request does in its channel: start, with a
// waiter, and finish, answering the request, when the channel completes it.
type waitingOp interface {
	start(op channels.Op)
	finish(msg []byte, err error)
}

// parkedRead is a msg READ waiting for a message, or, on a queue that
// defers (channels.ErrDeferred), for the answer to whether there is one.
type parkedRead struct {
	h     *msgHandle
	req   *fuse.ReadRequest
	wait  bool // for a message; else ErrWouldBlock where it would wait
	atEnd bool // at the end zone (see read): no message is end of file
}

func (r parkedRead) start(op channels.Op) { r.h.c.queue.Receive(op, r.wait) }
func (r parkedRead) finish(msg []byte, err error) {
	if r.atEnd && err == channels.ErrWouldBlock {
		err = io.EOF // end of file, for now
	}
	r.h.deliver(r.req, msg, err)
}

// parkedWrite is a msg WRITE waiting for room for its message (a copy of
// the request's data), or for a queue that defers to take it.
type parkedWrite struct {
	h    *msgHandle
	req  *fuse.WriteRequest
	msg  []byte
	wait bool // for room; else ErrWouldBlock where it would wait
}

func (w parkedWrite) start(op channels.Op) { w.h.c.queue.Send(op, w.msg, w.wait) }
func (w parkedWrite) finish(_ []byte, err error) {
	if err != nil {
		putBuf(w.msg)
	}
	w.h.sent(w.req, len(w.msg), err)
}

var (
	_ waitingOp = parkedRead{}
	_ waitingOp = parkedWrite{}
)

// park starts op, which may wait, with a waiter registered for INTERRUPT.
// The request's data must have been copied: its receive buffer (1 MiB) is
// given back, so that waiting requests hold only what they need.
func (h *msgHandle) park(req fuse.Request, op waitingOp) error {
	req.Hdr().ReleaseBuffer()
	p := &parkedRequest{s: h.s, req: req, op: op}
	p.w = h.c.queue.NewOp(p.done)
	if !h.s.pending.add(req.Hdr().ID, p) {
		// Interrupted before it parked.
		if signalsEndWait(req.Hdr().Pid) {
			return errInterrupted
		}
		h.s.pending.add(req.Hdr().ID, p) // the early interrupt is used up: this registers
		p.watching.Store(true)
		go p.watchSignals()
	}
	op.start(p.w)
	return nil
}

// parkedRequest is a READ or WRITE of msg that may wait in its channel.
type parkedRequest struct {
	s        *Server
	req      fuse.Request
	w        channels.Op
	op       waitingOp
	finished atomic.Bool // done has run
	watching atomic.Bool // watchSignals runs
}

func (p *parkedRequest) done(msg []byte, err error) {
	p.finished.Store(true)
	p.s.pending.remove(p.req.Hdr().ID)
	p.op.finish(msg, err)
}

// interrupt answers the kernel's INTERRUPT: EINTR now if a signal that
// matters is pending (see signalsEndWait), else the request waits on and
// its thread's signals are watched.
func (p *parkedRequest) interrupt() {
	if !signalsEndWait(p.req.Hdr().Pid) {
		if !p.watching.Swap(true) {
			go p.watchSignals()
		}
		return
	}
	p.cancel()
}

// cancel withdraws the request from its channel and answers EINTR, unless
// it has completed already.
func (p *parkedRequest) cancel() {
	if p.w.Cancel() {
		p.s.pending.remove(p.req.Hdr().ID)
		p.req.RespondError(syscall.EINTR)
	}
}

// signalRecheck is how often the signals of a thread whose interrupted
// request was kept waiting (it was stopped, traced or frozen) are read
// again. It bounds how late a later SIGINT or SIGTERM takes effect.
const signalRecheck = 20 * time.Millisecond

// watchSignals answers the request EINTR once its thread gets a signal
// that matters, or returns when the request completes.
func (p *parkedRequest) watchSignals() {
	t := time.NewTicker(signalRecheck)
	defer t.Stop()
	for range t.C {
		if p.finished.Load() {
			return
		}
		if signalsEndWait(p.req.Hdr().Pid) {
			p.cancel()
			return
		}
	}
}

// poll reports readiness and keeps the kernel's wakeup handle, even when
// ready already: edge-triggered pollers (every Go program) need the next
// change too.
func (h *msgHandle) poll(req *fuse.PollRequest) fuse.PollEvents {
	var interest channels.Readiness
	if req.Events&(fuse.PollIn|fuse.PollReadNormal) != 0 || req.Events == 0 {
		interest |= channels.Readable
	}
	if req.Events&(fuse.PollOut|fuse.PollWriteNormal) != 0 || req.Events == 0 {
		interest |= channels.Writable
	}
	var watch channels.PollWatch
	if wakeup, ok := req.Wakeup(); ok {
		h.pollMu.Lock()
		h.wakeup, h.polled = wakeup, true
		h.pollMu.Unlock()
		watch = h.watch
	}
	h.mu.Lock()
	unread := h.win != nil && h.winSeen < len(h.win) || h.retryDue
	h.mu.Unlock()

	r := h.c.queue.Poll(watch, interest)
	var ev fuse.PollEvents
	if r&channels.Readable != 0 || unread {
		ev |= fuse.PollIn | fuse.PollReadNormal
	}
	if r&channels.Writable != 0 {
		ev |= fuse.PollOut | fuse.PollWriteNormal
	}
	if r&channels.HangUp != 0 && !unread {
		ev |= fuse.PollHangup
	}
	return ev
}

// wake tells the kernel that readiness may have changed.
func (h *msgHandle) wake() {
	h.pollMu.Lock()
	wakeup, ok := h.wakeup, h.polled
	h.pollMu.Unlock()
	if !ok {
		return
	}
	if err := h.s.conn.NotifyPollWakeup(wakeup); err != nil && !errors.Is(err, fuse.ErrNotCached) {
		h.s.log.Debug("poll wakeup failed", "channel", h.s.nameOf(h.c), "err", err)
	}
}

func (h *msgHandle) release() {
	h.watch.Stop()
	h.mu.Lock()
	truncated := h.dropWindow()
	h.mu.Unlock()
	h.c.queue.Released(h.reads, h.writes, truncated)
}
