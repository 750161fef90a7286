package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	"golang.org/x/sys/unix"

	"github.com/ipcfs/ipcfs/channels"
	"github.com/ipcfs/ipcfs/natschan"
)

// Config is what a mount is made with.
type Config struct {
	Mountpoint string
	AllowOther bool            // other users may enter; the mode bits decide
	Limits     channels.Limits // each new channel's queue capacity
	ShmMax     int64           // largest shared region of one channel
	// Budget bounds the channels and memory of the mount and of each
	// owner uid (see limits.go); zero fields: no limit.
	Budget channels.BudgetLimits
	// StrictDirtyLimit keeps the kernel's small dirty-page limit for FUSE
	// mounts; by default (as root) it is lifted, see Mount.
	StrictDirtyLimit bool
	// Passthrough asks the kernel to map shm regions directly (FUSE
	// passthrough: Linux 6.9 and CAP_SYS_ADMIN); without it, or where the
	// kernel declines, mappings go through the page cache.
	Passthrough bool
	// NATS, if not nil, is the shared namespace the mount joins: its
	// channels and their queues live in NATS JetStream (see nats.go).
	NATS   *natschan.Namespace
	Logger *slog.Logger // nil: discard
}

// Server serves one mount.
type Server struct {
	cfg     Config
	log     *slog.Logger
	conn    *fuse.Conn
	uid     uint32 // owner of the root: who mounted
	gid     uint32
	started time.Time
	pending *pendingRequests
	served  chan struct{} // closed when Serve returns
	lim     *limitsState

	mu         sync.RWMutex                 // guards the fields below and every channel's namespace fields
	names      map[string]*channel          // GUARDED_BY(mu); live channels by name
	channels   map[uint64]*channel          // GUARDED_BY(mu); by serial: live ones, and removed ones the kernel still knows
	msgNodes   map[fuse.NodeID]*msgInstance // GUARDED_BY(mu)
	handles    map[fuse.HandleID]handle     // GUARDED_BY(mu)
	byID       map[string]*channel          // GUARDED_BY(mu); NATS-backed live channels by their namespace ID
	nextSerial uint64                       // GUARDED_BY(mu)
	nextMsg    uint64                       // GUARDED_BY(mu); the last msg instance's number
	nextHandle fuse.HandleID                // GUARDED_BY(mu)
}

func newServer(cfg Config, conn *fuse.Conn) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg:      cfg,
		log:      log,
		conn:     conn,
		uid:      uint32(os.Getuid()),
		gid:      uint32(os.Getgid()),
		started:  time.Now(),
		pending:  newPendingRequests(),
		served:   make(chan struct{}),
		lim:      newLimitsState(cfg),
		names:    make(map[string]*channel),
		channels: make(map[uint64]*channel),
		msgNodes: make(map[fuse.NodeID]*msgInstance),
		handles:  make(map[fuse.HandleID]handle),
		byID:     make(map[string]*channel),
	}
}

// Serve answers requests until the mount goes away: goroutines that read
// requests and answer them inline, one per CPU the daemon may use.
//
// As many loops as CPUs serve: more than that only take turns on a CPU.
// On one CPU, two loops made every ping-pong message wake the thread that
// was not running (the kernel wakes the longest waiting reader of
// /dev/fuse): a 64 B round trip took 45-49 us against 29-30 us with one
// loop, and one-way throughput halved. With two CPUs two loops overlap a
// writer's and a reader's requests (64 B one-way: 67 k msgs/s against 36 k
// with one). The loops follow GOMAXPROCS, which the runtime keeps at the
// CPUs the process may use (affinity, cgroup limits): a loop whose number
// is not below it waits, between requests, until it is again.
func (s *Server) Serve() {
	defer close(s.served)
	stop := make(chan struct{})
	var once sync.Once
	var loops sync.WaitGroup
	for i := range max(runtime.GOMAXPROCS(0), runtime.NumCPU()) {
		loops.Go(func() {
			s.serveLoop(i, stop)
			once.Do(func() { close(stop) })
		})
	}
	loops.Wait()
}

// loopRecheck is how often an idle serving loop looks at GOMAXPROCS.
const loopRecheck = time.Second

// serveLoop is serving loop number i; it returns when the connection ends
// or, while idle, when stop is closed.
func (s *Server) serveLoop(i int, stop <-chan struct{}) {
	for {
		for i >= runtime.GOMAXPROCS(0) {
			select {
			case <-stop:
				return
			case <-time.After(loopRecheck):
			}
		}
		req, err := s.conn.ReadRequest()
		switch {
		case err == nil:
			s.dispatch(req)
		case errors.Is(err, io.EOF):
			return
		case errors.Is(err, syscall.EINTR), errors.Is(err, syscall.EAGAIN):
			// Go's preemption signals interrupt the read; try again.
		default:
			var errno syscall.Errno
			if errors.As(err, &errno) {
				s.log.Error("reading FUSE requests failed; this serving loop stops", "err", err)
				return
			}
			s.log.Warn("malformed FUSE request ignored", "err", err)
		}
	}
}

// dispatch answers one request, or parks it to be answered later; one
// that may wait for NATS is answered on a goroutine of its own.
func (s *Server) dispatch(req fuse.Request) {
	if s.cfg.NATS != nil && s.waitsForNATS(req) {
		go s.answer(req)
		return
	}
	s.answer(req)
}

// answer answers one request, or parks it to be answered later.
func (s *Server) answer(req fuse.Request) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("BUG: panic in request handler", "req", req.String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			req.RespondError(syscall.EIO)
		}
	}()
	if err := s.handle(req); err != nil {
		s.fail(req, err)
	}
}

// fail answers req with the errno for err and logs why.
func (s *Server) fail(req fuse.Request, err error) {
	errno, level := toErrno(err)
	if ctx := context.Background(); s.log.Enabled(ctx, level) {
		// Rate-limited per uid: see ratelimit.go.
		if ok, before := s.lim.logs.allow(req.Hdr().Uid, level, time.Now()); ok {
			if before > 0 {
				s.logSuppressed([]suppressed{{logKey{req.Hdr().Uid, level}, before}})
			}
			s.log.Log(ctx, level, "request failed", "op", opName(req), "errno", errnoName(errno), "err", err, "req", req.String())
		}
	}
	req.RespondError(errno)
}

// handle answers req (or parks it) and returns nil, or returns the error
// to answer it with.
func (s *Server) handle(req fuse.Request) error {
	switch r := req.(type) {
	case *fuse.LookupRequest:
		return s.lookup(r)
	case *fuse.GetattrRequest:
		a, err := s.attr(r.Node)
		if err != nil {
			return err
		}
		r.Respond(&fuse.GetattrResponse{Attr: a})
	case *fuse.SetattrRequest:
		return s.setattr(r)
	case *fuse.ForgetRequest:
		s.forget(r.Node, r.N)
		r.Respond()
	case *fuse.BatchForgetRequest:
		for _, f := range r.Forget {
			s.forget(f.NodeID, f.N)
		}
		r.Respond()
	case *fuse.MkdirRequest:
		return s.mkdir(r)
	case *fuse.RemoveRequest:
		return s.remove(r)
	case *fuse.RenameRequest:
		return s.rename(r)
	case *fuse.CreateRequest, *fuse.MknodRequest, *fuse.SymlinkRequest, *fuse.LinkRequest:
		return errNotPermitted
	case *fuse.OpenRequest:
		return s.open(r)
	case *fuse.ReadRequest:
		return s.read(r)
	case *fuse.WriteRequest:
		return s.write(r)
	case *fuse.PollRequest:
		return s.poll(r)
	case *fuse.ReleaseRequest:
		s.release(r.Handle)
		r.Respond()
	case *fuse.InterruptRequest:
		s.pending.interrupt(r.IntrID)
		r.Respond()
	case *fuse.FlushRequest:
		r.Respond()
	case *fuse.FsyncRequest:
		// shm writes reach the region before they are answered: nothing is pending.
		r.Respond()
	case *fuse.StatfsRequest:
		r.Respond(&fuse.StatfsResponse{Bsize: 4096, Frsize: 4096, Namelen: maxNameLen})
	case *fuse.AccessRequest:
		r.Respond() // default_permissions: the kernel checks
	case *fuse.DestroyRequest:
		r.Respond()
	case *fuse.GetxattrRequest, *fuse.ListxattrRequest, *fuse.SetxattrRequest, *fuse.RemovexattrRequest:
		// ENOSYS tells the kernel once and for all: it stops asking.
		req.RespondError(syscall.ENOSYS)
	default:
		// Never answer POLL this way: ENOSYS to POLL turns poll off for the whole mount.
		s.log.Debug("unsupported request", "req", req.String())
		req.RespondError(syscall.ENOSYS)
	}
	return nil
}

// Handle-level requests.

// handle is an open file or directory.
type handle interface {
	release()
}

// reader is a handle whose reads complete at once.
type reader interface {
	readAt(off int64, size int) ([]byte, error)
}

// requestReader is a handle that answers READ requests itself — now, or
// later if they must wait — unless it returns an error.
type requestReader interface {
	read(req *fuse.ReadRequest) error
}

// writer is a handle whose writes complete at once.
type writer interface {
	writeAt(data []byte, off int64) (int, error)
}

// requestWriter is a handle whose writes may wait: it answers req itself,
// now or later, unless it returns an error.
type requestWriter interface {
	write(req *fuse.WriteRequest) error
}

// poller is a handle that reports readiness and may wake pollers later.
type poller interface {
	poll(req *fuse.PollRequest) fuse.PollEvents
}

func (s *Server) handleOf(id fuse.HandleID) (handle, error) {
	s.mu.RLock()
	h, ok := s.handles[id]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("handle %v: %w", id, errNoHandle)
	}
	return h, nil
}

func (s *Server) addHandle(h handle) fuse.HandleID {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextHandle++
	s.handles[s.nextHandle] = h
	return s.nextHandle
}

func (s *Server) release(id fuse.HandleID) {
	s.mu.Lock()
	h, ok := s.handles[id]
	delete(s.handles, id)
	s.mu.Unlock()
	if ok {
		h.release()
	}
}

// directFile is a handle opened with direct I/O whose reads take or
// generate content (msg, ctl, status).
type directFile interface {
	directIO()
}

func (s *Server) read(r *fuse.ReadRequest) error {
	h, err := s.handleOf(r.Handle)
	if err != nil {
		return err
	}
	if _, ok := h.(directFile); ok && !r.Dir && r.Flags&fuse.ReadLockOwner == 0 {
		// Only read(2) and its kin (direct I/O) send a READ with a lock
		// owner. One without comes from the page cache: sendfile, splice
		// and copy_file_range in kernels that send direct-I/O files to
		// filemap_splice_read, readahead(2), fadvise, a private mapping.
		// It would take a message into a cache page that other readers
		// then see, or that nobody reads; a parked one would hold the
		// page's lock. Refused at once, it takes nothing, and sendfile's
		// users (busybox cat, Python's shutil, Go's io.Copy) fall back to
		// read(2) on EINVAL.
		return fmt.Errorf("page-cache read of a direct-I/O file (sendfile, splice, readahead or mmap): %w", errPageCacheRead)
	}
	switch h := h.(type) {
	case requestReader:
		return h.read(r)
	case reader:
		data, err := h.readAt(r.Offset, r.Size)
		if err != nil {
			return err
		}
		r.Respond(&fuse.ReadResponse{Data: data})
		return nil
	}
	return fmt.Errorf("read: %w", errNotSupported)
}

func (s *Server) write(r *fuse.WriteRequest) error {
	h, err := s.handleOf(r.Handle)
	if err != nil {
		return err
	}
	switch h := h.(type) {
	case requestWriter:
		return h.write(r)
	case writer:
		n, err := h.writeAt(r.Data, r.Offset)
		if err != nil {
			return err
		}
		r.Respond(&fuse.WriteResponse{Size: n})
		return nil
	}
	return fmt.Errorf("write: %w", errNotSupported)
}

// alwaysReady is the poll answer for files whose reads and writes never wait.
const alwaysReady = fuse.DefaultPollMask

func (s *Server) poll(r *fuse.PollRequest) error {
	h, err := s.handleOf(r.Handle)
	if err != nil {
		return err
	}
	ev := alwaysReady
	if p, ok := h.(poller); ok {
		ev = p.poll(r)
	}
	r.Respond(&fuse.PollResponse{REvents: ev})
	return nil
}

// opName is a request's operation, for log lines.
func opName(req fuse.Request) string {
	name := fmt.Sprintf("%T", req)
	const prefix, suffix = "*fuse.", "Request"
	if len(name) > len(prefix)+len(suffix) {
		name = name[len(prefix) : len(name)-len(suffix)]
	}
	return name
}

func errnoName(e syscall.Errno) string {
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return e.Error()
}

// Stats is a snapshot of a server's size, for leak checks and debugging.
type Stats struct {
	Channels        int // live channels
	RemovedChannels int // removed, but still known to the kernel
	MsgNodes        int // msg instances the kernel holds (see msgInstanceBit)
	Handles         int // open files and directories
	Parked          int // requests waiting in a channel
}

// Stats returns a snapshot of the server's tables.
func (s *Server) Stats() Stats {
	s.mu.RLock()
	st := Stats{
		Channels:        len(s.names),
		RemovedChannels: len(s.channels) - len(s.names),
		MsgNodes:        len(s.msgNodes),
		Handles:         len(s.handles),
	}
	s.mu.RUnlock()
	st.Parked = s.pending.len()
	return st
}
