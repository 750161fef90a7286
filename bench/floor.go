package bench

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The floor server: the least any FUSE daemon can do for msg's exchange,
// measured in the same run as msg so that msg's figures have a ratio to
// it. It speaks raw /dev/fuse (no library), mounted by fusermount3, and
// serves channels shaped like ipcfs's — mkdir NAME makes NAME/msg,
// NAME/ctl and NAME/status — with the same open flags, so the clients and
// the kernel do exactly what they do with ipcfs:
//
//   - a WRITE to msg answers a READ parked there, the reader first, or is
//     queued (up to the default queue-msgs and queue-bytes of ipcfs, then
//     parked until a READ takes a message);
//   - a READ of msg takes a queued message, or is parked until a WRITE;
//   - "hangup" written to ctl ends the stream: reads get end of file once
//     the queue is drained;
//   - a READ of status answers at once ("0\n"): the trivial request.
//
// It is `ipcfs bench floor MOUNTPOINT`, a child process of `ipcfs bench`:
// a process never touches a mount it serves.

// FloorMain serves the floor on the mount point given in args until
// SIGTERM or SIGINT, or until it is unmounted, and returns the exit code.
// Once ready it logs `msg=mounted` on stderr, as `ipcfs mount` does.
func FloorMain(args []string) int {
	if err := floorMain(args); err != nil {
		fmt.Fprintln(os.Stderr, "ipcfs bench floor:", err)
		return 1
	}
	return 0
}

// floorLoops is how many threads read /dev/fuse. Parked requests hold no
// thread, so one would do; a second takes the next request while the
// first writes its replies.
const floorLoops = 2

func floorMain(args []string) error {
	fs := flag.NewFlagSet("ipcfs bench floor", flag.ContinueOnError)
	loops := fs.Int("loops", floorLoops, "serving threads")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *loops < 1 {
		return errors.New("usage: ipcfs bench floor [-loops N] MOUNTPOINT")
	}
	mnt := fs.Arg(0)
	fd, err := floorMount(mnt)
	if err != nil {
		return err
	}
	s := newFloorServer(fd)
	buf := make([]byte, floorReadBuffer)
	if err := s.init(buf); err != nil {
		floorUnmount(mnt)
		return err
	}
	// The serving loops allocate queued messages only; collections
	// would only add noise.
	debug.SetGCPercent(400)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	done := make(chan error, *loops)
	for i := range *loops {
		b := buf
		if i > 0 {
			b = make([]byte, floorReadBuffer)
		}
		go func() { done <- s.serve(b) }()
	}
	fmt.Fprintf(os.Stderr, "level=info msg=mounted mountpoint=%s\n", mnt)
	select {
	case <-sigs:
		return floorUnmount(mnt)
	case err := <-done:
		floorUnmount(mnt)
		return err
	}
}

// floorMount mounts a FUSE filesystem on mnt with fusermount3, which
// passes back the /dev/fuse descriptor over a socket (as bazil's mount
// does), and returns that descriptor.
func floorMount(mnt string) (int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socketpair: %w", err)
	}
	child := os.NewFile(uintptr(fds[0]), "fusermount-comm")
	defer child.Close()
	defer unix.Close(fds[1])
	cmd := exec.Command("fusermount3", "-o", "fsname=ipcfs-floor,subtype=ipcfs-floor", "--", mnt)
	cmd.Env = append(os.Environ(), "_FUSE_COMMFD=3")
	cmd.ExtraFiles = []*os.File{child}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return -1, fmt.Errorf("fusermount3 %s: %v: %s", mnt, err, bytes.TrimSpace(out.Bytes()))
	}
	b, oob := make([]byte, 8), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(fds[1], b, oob, 0)
	if err != nil {
		return -1, fmt.Errorf("receiving /dev/fuse from fusermount3: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("receiving /dev/fuse from fusermount3: %d messages, %v", len(msgs), err)
	}
	got, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(got) != 1 {
		return -1, fmt.Errorf("receiving /dev/fuse from fusermount3: %d descriptors, %v", len(got), err)
	}
	unix.CloseOnExec(got[0])
	return got[0], nil
}

// floorUnmount detaches the mount (lazily: clients may still hold it).
func floorUnmount(mnt string) error {
	out, err := exec.Command("fusermount3", "-u", "-z", "--", mnt).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u -z %s: %v: %s", mnt, err, bytes.TrimSpace(out))
	}
	return nil
}

// Node kinds of the floor's tree.
const (
	floorRoot = iota
	floorDir
	floorMsg
	floorCtl
	floorStatus
)

// floorEntries are a channel's files, in node-ID order after its
// directory.
var floorEntries = []struct {
	name string
	kind int
	mode uint32
}{
	{"msg", floorMsg, 0o600},
	{"ctl", floorCtl, 0o600},
	{"status", floorStatus, 0o400},
}

const floorStatusText = "0\n"

// Capacity of a floor channel's queue: ipcfs's defaults.
const (
	floorQueueMsgs  = 4096
	floorQueueBytes = 16 << 20
)

type floorServer struct {
	fd int

	mu    sync.Mutex
	chans map[string]*floorChan // by name; GUARDED_BY(mu)
	nodes map[uint64]*floorChan // every node ID but the root's; GUARDED_BY(mu)
	next  uint64                // the next channel's first node ID; GUARDED_BY(mu)
	uid   uint32
	gid   uint32
}

// floorChan is one channel. Its node IDs are id (the directory) and
// id+1… for floorEntries.
type floorChan struct {
	id      uint64
	uid     uint32
	gid     uint32
	queue   [][]byte      // GUARDED_BY(floorServer.mu)
	qbytes  int           // GUARDED_BY(floorServer.mu)
	readers []parkedRead  // GUARDED_BY(floorServer.mu)
	writers []parkedWrite // GUARDED_BY(floorServer.mu)
	hungup  bool          // GUARDED_BY(floorServer.mu)
}

type parkedRead struct {
	unique uint64
	size   int
}

type parkedWrite struct {
	unique uint64
	data   []byte
}

func newFloorServer(fd int) *floorServer {
	return &floorServer{
		fd:    fd,
		chans: make(map[string]*floorChan),
		nodes: make(map[uint64]*floorChan),
		next:  2,
		uid:   uint32(os.Getuid()),
		gid:   uint32(os.Getgid()),
	}
}

// read reads one request, retrying what only means "try again".
func (s *floorServer) read(buf []byte) ([]byte, error) {
	for {
		n, err := unix.Read(s.fd, buf)
		switch err {
		case nil:
			return buf[:n], nil
		case unix.EINTR, unix.EAGAIN, unix.ENOENT: // ENOENT: the request was aborted
			continue
		}
		return nil, err
	}
}

// init answers INIT.
func (s *floorServer) init(buf []byte) error {
	req, err := s.read(buf)
	if err != nil {
		return fmt.Errorf("reading INIT: %w", err)
	}
	h, ok := parseInHeader(req)
	if !ok || h.opcode != opInit || len(req) < inHeaderSize+16 {
		return fmt.Errorf("first request is not INIT: %+v", h)
	}
	in := req[inHeaderSize:]
	major, minor := ne.Uint32(in[0:]), ne.Uint32(in[4:])
	readahead, flags := ne.Uint32(in[8:]), ne.Uint32(in[12:])
	if major != 7 || minor < 12 {
		s.reply(h.unique, -int32(unix.EPROTO))
		return fmt.Errorf("kernel speaks FUSE %d.%d, want 7.12 or later", major, minor)
	}
	out := make([]byte, initOutSize)
	ne.PutUint32(out[0:], 7)
	ne.PutUint32(out[4:], min(minor, floorProtoMinor))
	ne.PutUint32(out[8:], readahead)
	ne.PutUint32(out[12:], flags&(initBigWrites|initMaxPages))
	ne.PutUint32(out[20:], floorMaxWrite)
	ne.PutUint32(out[24:], 1) // time_gran
	ne.PutUint16(out[28:], floorMaxPages)
	if minor < 23 {
		out = out[:24] // FUSE_COMPAT_22_INIT_OUT_SIZE
	}
	if err := s.reply(h.unique, 0, out); err != nil {
		return fmt.Errorf("answering INIT: %w", err)
	}
	return nil
}

// serve reads and answers requests on one locked OS thread until the
// connection ends (unmounted: ENODEV).
func (s *floorServer) serve(buf []byte) error {
	runtime.LockOSThread()
	out := make([]byte, 256)
	for {
		req, err := s.read(buf)
		if err == unix.ENODEV {
			return errors.New("unmounted")
		}
		if err != nil {
			return fmt.Errorf("reading /dev/fuse: %w", err)
		}
		h, ok := parseInHeader(req)
		if !ok {
			return fmt.Errorf("short request of %d bytes", len(req))
		}
		if h.opcode == opDestroy {
			s.reply(h.unique, 0)
			return errors.New("unmounted")
		}
		s.handle(h, req[inHeaderSize:], out)
	}
}

// reply writes one reply: the header, then parts. A reply the kernel no
// longer waits for (ENOENT: the request was interrupted) is dropped.
func (s *floorServer) reply(unique uint64, errno int32, parts ...[]byte) error {
	var hdr [outHeaderSize]byte
	n := outHeaderSize
	for _, p := range parts {
		n += len(p)
	}
	putOutHeader(hdr[:], n, errno, unique)
	iov := make([][]byte, 0, 3)
	iov = append(iov, hdr[:])
	iov = append(iov, parts...)
	for {
		_, err := unix.Writev(s.fd, iov)
		switch err {
		case nil, unix.ENOENT:
			return nil
		case unix.EINTR:
			continue
		}
		return err
	}
}

func (s *floorServer) fail(unique uint64, errno unix.Errno) {
	s.reply(unique, -int32(errno))
}

func (s *floorServer) attr(id uint64) (floorAttr, bool) {
	if id == 1 {
		return floorAttr{ino: 1, mode: unix.S_IFDIR | 0o1777, nlink: 2, uid: s.uid, gid: s.gid}, true
	}
	c := s.nodes[id]
	if c == nil {
		return floorAttr{}, false
	}
	if id == c.id {
		return floorAttr{ino: id, mode: unix.S_IFDIR | 0o700, nlink: 2, uid: c.uid, gid: c.gid}, true
	}
	e := floorEntries[id-c.id-1]
	a := floorAttr{ino: id, mode: unix.S_IFREG | e.mode, nlink: 1, uid: c.uid, gid: c.gid}
	switch e.kind {
	case floorMsg:
		a.size = 1 << 62 // as ipcfs's msg: no write extends it
	case floorStatus:
		a.size = uint64(len(floorStatusText))
	}
	return a, true
}

// kind returns the kind of node id and its channel.
func (s *floorServer) kind(id uint64) (int, *floorChan) {
	if id == 1 {
		return floorRoot, nil
	}
	c := s.nodes[id]
	switch {
	case c == nil:
		return -1, nil
	case id == c.id:
		return floorDir, c
	}
	return floorEntries[id-c.id-1].kind, c
}

// handle answers one request (or parks it). out is the loop's buffer for
// small replies.
func (s *floorServer) handle(h inHeader, body, out []byte) {
	switch h.opcode {
	case opRead:
		s.readReq(h, body)
	case opWrite:
		s.writeReq(h, body)
	case opInterrupt:
		s.interrupt(h, body)
	case opForget, opBatchForget:
		// No reply. Nodes live until rmdir.
	case opLookup:
		s.mu.Lock()
		name := cString(body)
		var a floorAttr
		ok := false
		switch k, c := s.kind(h.nodeid); k {
		case floorRoot:
			if c := s.chans[name]; c != nil {
				a, ok = s.attr(c.id)
			}
		case floorDir:
			for i, e := range floorEntries {
				if e.name == name {
					a, ok = s.attr(c.id + 1 + uint64(i))
				}
			}
		}
		s.mu.Unlock()
		if !ok {
			s.fail(h.unique, unix.ENOENT)
			return
		}
		putEntryOut(out, a)
		s.reply(h.unique, 0, out[:entryOutSize])
	case opGetattr, opSetattr:
		s.mu.Lock()
		a, ok := s.attr(h.nodeid)
		s.mu.Unlock()
		if !ok {
			s.fail(h.unique, unix.ENOENT)
			return
		}
		putAttrOut(out, a)
		s.reply(h.unique, 0, out[:attrOutSize])
	case opMkdir:
		if h.nodeid != 1 || len(body) < 8 {
			s.fail(h.unique, unix.EPERM)
			return
		}
		name := cString(body[8:])
		s.mu.Lock()
		if s.chans[name] != nil {
			s.mu.Unlock()
			s.fail(h.unique, unix.EEXIST)
			return
		}
		c := &floorChan{id: s.next, uid: h.uid, gid: h.gid}
		s.next += 1 + uint64(len(floorEntries))
		s.chans[name] = c
		for i := range 1 + len(floorEntries) {
			s.nodes[c.id+uint64(i)] = c
		}
		a, _ := s.attr(c.id)
		s.mu.Unlock()
		putEntryOut(out, a)
		s.reply(h.unique, 0, out[:entryOutSize])
	case opRmdir:
		name := cString(body)
		s.mu.Lock()
		c := s.chans[name]
		if h.nodeid != 1 || c == nil {
			s.mu.Unlock()
			s.fail(h.unique, unix.ENOENT)
			return
		}
		delete(s.chans, name)
		for i := range 1 + len(floorEntries) {
			delete(s.nodes, c.id+uint64(i))
		}
		s.hangup(c)
		s.mu.Unlock()
		s.reply(h.unique, 0)
	case opOpen, opOpendir:
		s.mu.Lock()
		k, _ := s.kind(h.nodeid)
		s.mu.Unlock()
		var flags uint32
		switch k {
		case floorMsg:
			flags = fopenDirectIO | fopenParallelDirectWrites | fopenNoFlush
		case floorCtl, floorStatus:
			flags = fopenDirectIO | fopenNoFlush
		case floorRoot, floorDir:
		default:
			s.fail(h.unique, unix.ENOENT)
			return
		}
		clear(out[:openOutSize])
		ne.PutUint32(out[8:], flags)
		s.reply(h.unique, 0, out[:openOutSize])
	case opRelease, opReleasedir, opFlush, opFsync, opFsyncdir:
		s.reply(h.unique, 0)
	case opReaddir:
		s.reply(h.unique, 0) // empty: the floor is not for browsing
	case opStatfs:
		clear(out[:statfsOutSize])
		s.reply(h.unique, 0, out[:statfsOutSize])
	case opUnlink:
		s.fail(h.unique, unix.EPERM)
	default:
		s.fail(h.unique, unix.ENOSYS)
	}
}

// readReq answers a READ: of msg from the queue (or parks it), of status
// and ctl at once.
func (s *floorServer) readReq(h inHeader, body []byte) {
	if len(body) < readInSize {
		s.fail(h.unique, unix.EINVAL)
		return
	}
	off, size := ne.Uint64(body[8:]), int(ne.Uint32(body[16:]))
	s.mu.Lock()
	k, c := s.kind(h.nodeid)
	switch k {
	case floorStatus:
		s.mu.Unlock()
		t := floorStatusText[min(off, uint64(len(floorStatusText))):]
		s.reply(h.unique, 0, []byte(t[:min(size, len(t))]))
		return
	case floorCtl:
		s.mu.Unlock()
		s.reply(h.unique, 0)
		return
	case floorMsg:
	default:
		s.mu.Unlock()
		s.fail(h.unique, unix.EBADF)
		return
	}
	if len(c.queue) == 0 {
		if c.hungup {
			s.mu.Unlock()
			s.reply(h.unique, 0)
			return
		}
		c.readers = append(c.readers, parkedRead{h.unique, size})
		s.mu.Unlock()
		return
	}
	m := c.queue[0]
	c.queue[0] = nil
	c.queue = c.queue[1:]
	c.qbytes -= len(m)
	// Room now: the first parked writer's message joins the queue.
	var w parkedWrite
	if len(c.writers) > 0 {
		w = c.writers[0]
		c.writers = c.writers[1:]
		c.queue = append(c.queue, w.data)
		c.qbytes += len(w.data)
	}
	s.mu.Unlock()
	s.reply(h.unique, 0, m[:min(size, len(m))])
	if w.data != nil {
		s.answerWrite(w.unique, len(w.data))
	}
}

// answerWrite answers a WRITE of n bytes.
func (s *floorServer) answerWrite(unique uint64, n int) {
	var out [8]byte
	ne.PutUint32(out[0:], uint32(n))
	s.reply(unique, 0, out[:])
}

// writeReq answers a WRITE: to msg it answers a parked READ first, then
// the WRITE; or queues the message; or parks the WRITE while the queue is
// full. To ctl, "hangup" ends the stream.
func (s *floorServer) writeReq(h inHeader, body []byte) {
	if len(body) < writeInSize {
		s.fail(h.unique, unix.EINVAL)
		return
	}
	size := int(ne.Uint32(body[16:]))
	data := body[writeInSize:]
	if size > len(data) {
		s.fail(h.unique, unix.EINVAL)
		return
	}
	data = data[:size]
	s.mu.Lock()
	k, c := s.kind(h.nodeid)
	switch k {
	case floorCtl:
		if bytes.Contains(data, []byte("hangup")) {
			s.hangup(c)
		}
		s.mu.Unlock()
		s.answerWrite(h.unique, size)
		return
	case floorMsg:
	default:
		s.mu.Unlock()
		s.fail(h.unique, unix.EBADF)
		return
	}
	switch {
	case c.hungup:
		s.mu.Unlock()
		s.fail(h.unique, unix.EPIPE)
	case len(c.readers) > 0:
		r := c.readers[0]
		c.readers = c.readers[1:]
		s.mu.Unlock()
		s.reply(r.unique, 0, data[:min(r.size, len(data))])
		s.answerWrite(h.unique, size)
	case len(c.queue) < floorQueueMsgs && c.qbytes+size <= floorQueueBytes:
		c.queue = append(c.queue, bytes.Clone(data))
		c.qbytes += size
		s.mu.Unlock()
		s.answerWrite(h.unique, size)
	default:
		c.writers = append(c.writers, parkedWrite{h.unique, bytes.Clone(data)})
		s.mu.Unlock()
	}
}

// hangup ends c's stream: parked readers (the queue is empty if there
// are any) get end of file, parked writers EPIPE. Called with s.mu held;
// it replies under it, which only orders the replies.
func (s *floorServer) hangup(c *floorChan) {
	c.hungup = true
	for _, r := range c.readers {
		s.reply(r.unique, 0)
	}
	for _, w := range c.writers {
		s.fail(w.unique, unix.EPIPE)
	}
	c.readers, c.writers = nil, nil
}

// interrupt answers a parked request with EINTR. If it is not parked (it
// was answered, or a loop has not parked it yet), EAGAIN asks the kernel
// to send the INTERRUPT again while the request still waits.
func (s *floorServer) interrupt(h inHeader, body []byte) {
	if len(body) < 8 {
		return
	}
	target := ne.Uint64(body[0:])
	s.mu.Lock()
	for _, c := range s.chans {
		for i, r := range c.readers {
			if r.unique == target {
				c.readers = append(c.readers[:i], c.readers[i+1:]...)
				s.mu.Unlock()
				s.fail(target, unix.EINTR)
				return
			}
		}
		for i, w := range c.writers {
			if w.unique == target {
				c.writers = append(c.writers[:i], c.writers[i+1:]...)
				s.mu.Unlock()
				s.fail(target, unix.EINTR)
				return
			}
		}
	}
	s.mu.Unlock()
	s.fail(h.unique, unix.EAGAIN)
}
