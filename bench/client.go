package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"
)

// The client side: what `ipcfs bench client ROLE` does in its own process.
// Every transport is a pair of blocking file descriptors used with raw
// read(2) and write(2) (golang.org/x/sys/unix), so what is timed is the IPC
// and not Go's poller. A client opens named files (msg) or inherits fds 3
// (where it writes) and 4 (where it reads) from the parent (pipe, socket).

// Roles of a client process.
const (
	rolePing     = "ping"      // round trips: write a message, read the echo; time each
	rolePong     = "pong"      // echo every message until end of file
	roleSend     = "send"      // write messages until the time or count is up, then end the stream
	roleRecv     = "recv"      // read messages until end of file or count; time first to last
	roleShmSetup = "shm-setup" // time making, touching and removing shared regions
	roleShmCopy  = "shm-copy"  // copy bandwidth through a mapping, pages already faulted in
	rolePread    = "pread"     // time pread(2) of a small file: one FUSE request each
)

// clientResult is what a client prints on stdout, as one JSON object.
type clientResult struct {
	// ping: one round trip each, in nanoseconds.
	Samples []int64 `json:"samples,omitempty"`
	// ping, send, recv: messages moved (recv: counted when complete).
	Count int64 `json:"count,omitempty"`
	// ping, send: the timed loop; recv: first message to last.
	ElapsedNs int64 `json:"elapsed_ns,omitempty"`
	// shm-setup: one entry per repetition, in -dir and in -devshm-dir.
	Setups    []shmTimes `json:"setups,omitempty"`
	DevSetups []shmTimes `json:"dev_setups,omitempty"`
	// shm-copy: bytes per second into and out of the mapping, in -dir
	// and in -devshm-dir.
	CopyIn     float64 `json:"copy_in_bps,omitempty"`
	CopyOut    float64 `json:"copy_out_bps,omitempty"`
	DevCopyIn  float64 `json:"dev_copy_in_bps,omitempty"`
	DevCopyOut float64 `json:"dev_copy_out_bps,omitempty"`
}

// shmTimes are the steps of making, first touching and removing one region.
type shmTimes struct {
	Mkdir  int64 `json:"mkdir_ns"`     // mkdir of the channel (or directory)
	Map    int64 `json:"map_ns"`       // open + ftruncate + mmap
	Touch  int64 `json:"touch_ns"`     // a store to every page
	Unmap  int64 `json:"unmap_ns"`     // munmap + close
	Remove int64 `json:"remove_ns"`    // rmdir (and unlink, in /dev/shm)
	Region int64 `json:"region_bytes"` // the region's size
}

// ClientMain runs one benchmark client with the arguments after
// `ipcfs bench client`, prints its result as JSON on stdout, and returns
// the exit code. It is an internal interface between `ipcfs bench` (and
// the repository's Go benchmarks) and their child processes.
func ClientMain(args []string) int {
	if err := client(args); err != nil {
		fmt.Fprintln(os.Stderr, "ipcfs bench client:", err)
		return 1
	}
	return 0
}

type clientFlags struct {
	size    int
	dur     time.Duration
	count   int64
	in, out string // files to read and write; "" means fds 4 and 3
	hangup  string // a ctl file to write "hangup" to at the end
	gate    bool
	dir     string
	devDir  string
	region  int64
	reps    int

	url      string // nats-*: the NATS server
	consumer string // nats-*: the durable consumer of the -in stream
}

func client(args []string) error {
	if len(args) == 0 {
		return errors.New("missing role")
	}
	role := args[0]
	var f clientFlags
	fs := flag.NewFlagSet("ipcfs bench client "+role, flag.ContinueOnError)
	fs.IntVar(&f.size, "size", 64, "message size in bytes")
	fs.DurationVar(&f.dur, "dur", time.Second, "how long to run (when -count is 0)")
	fs.Int64Var(&f.count, "count", 0, "how many messages or round trips (0: run for -dur)")
	fs.StringVar(&f.in, "in", "", "file to read messages from (default: fd 4)")
	fs.StringVar(&f.out, "out", "", "file to write messages to (default: fd 3)")
	fs.StringVar(&f.hangup, "hangup", "", "ctl file to hang up when done writing")
	fs.BoolVar(&f.gate, "gate", false, "print \"ready\" and wait for a byte on stdin before the timed loop")
	fs.StringVar(&f.dir, "dir", "", "shm: the ipcfs mount to make channels in")
	fs.StringVar(&f.devDir, "devshm-dir", "", "shm: a directory in /dev/shm to compare with, alternately")
	fs.Int64Var(&f.region, "region", 16<<20, "shm: region size in bytes")
	fs.IntVar(&f.reps, "reps", 3, "shm-setup: repetitions")
	fs.StringVar(&f.url, "url", "", "nats-*: the NATS server, nats://host:port (-in is then a stream, -out a subject)")
	fs.StringVar(&f.consumer, "consumer", "readers", "nats-*: the durable pull consumer of the -in stream")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if f.size < 1 {
		return fmt.Errorf("-size %d: want at least 1", f.size)
	}
	// Nothing in the timed loops allocates much; a collection would only
	// add noise (and its signals would interrupt the system calls).
	debug.SetGCPercent(-1)

	var res clientResult
	var err error
	switch role {
	case rolePing:
		res, err = ping(f)
	case rolePong:
		err = pong(f)
	case roleSend:
		res, err = send(f)
	case roleRecv:
		res, err = recv(f)
	case roleShmSetup:
		res, err = shmSetup(f)
	case roleShmCopy:
		res, err = shmCopy(f)
	case rolePread:
		res, err = preads(f)
	case roleNATSPing:
		res, err = natsPing(f)
	case roleNATSPong:
		err = natsPong(f)
	case roleNATSSend:
		res, err = natsSend(f)
	case roleNATSRecv:
		res, err = natsRecv(f)
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// endpoints opens what the client reads from and writes to.
func (f clientFlags) endpoints(read, write bool) (rfd, wfd int, err error) {
	rfd, wfd = -1, -1
	if read {
		if rfd, err = openOrInherit(f.in, 4, unix.O_RDONLY); err != nil {
			return -1, -1, err
		}
	}
	if write {
		if wfd, err = openOrInherit(f.out, 3, unix.O_WRONLY); err != nil {
			return -1, -1, err
		}
	}
	return rfd, wfd, nil
}

// openOrInherit opens path in blocking mode, or, if path is "", makes sure
// the inherited fd is blocking.
func openOrInherit(path string, fd int, mode int) (int, error) {
	if path == "" {
		if err := unix.SetNonblock(fd, false); err != nil {
			return -1, fmt.Errorf("inherited fd %d: %w", fd, err)
		}
		return fd, nil
	}
	for {
		fd, err := unix.Open(path, mode|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", path, err)
		}
		return fd, nil
	}
}

// finish ends the client's outgoing stream: it hangs up the channel (msg)
// and closes its descriptors (a socket's one descriptor is inherited as
// both 3 and 4), so the peer reads end of file. rfd is -1 if there is none.
func (f clientFlags) finish(wfd, rfd int) error {
	if f.hangup != "" {
		fd, err := openOrInherit(f.hangup, -1, unix.O_WRONLY)
		if err != nil {
			return err
		}
		if err := writeFull(fd, []byte("hangup\n")); err != nil {
			return fmt.Errorf("hangup %s: %w", f.hangup, err)
		}
		unix.Close(fd)
	}
	unix.Close(wfd)
	if rfd >= 0 {
		unix.Close(rfd)
	}
	return nil
}

// waitGate tells the parent the client is ready and waits for its go.
func waitGate() error {
	if _, err := os.Stdout.WriteString("ready\n"); err != nil {
		return err
	}
	var b [1]byte
	if _, err := bufio.NewReader(os.Stdin).Read(b[:]); err != nil {
		return fmt.Errorf("waiting for the go byte: %w", err)
	}
	return nil
}

// pageBuffer returns n bytes of page-aligned memory, touched, so that a
// message crosses as few pages as it can (FUSE cuts writes at 32 pages of
// the caller's buffer).
func pageBuffer(n int) ([]byte, error) {
	ps := unix.Getpagesize()
	b, err := unix.Mmap(-1, 0, (n+ps-1)/ps*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mmap buffer: %w", err)
	}
	for i := range b {
		b[i] = byte(i)
	}
	return b[:n], nil
}

// writeFull writes all of p with one write(2) if the transport takes it
// whole (msg, socket, and pipes up to their capacity), retrying EINTR —
// Go's preemption signals interrupt raw blocking system calls.
func writeFull(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := rawWrite(fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// readMsg reads one message of len(p) bytes: one read(2) for msg and the
// socket, as many as it takes for a pipe. It returns false at end of file.
func readMsg(fd int, p []byte) (bool, error) {
	got := 0
	for got < len(p) {
		n, err := rawRead(fd, p[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, err
		}
		if n == 0 {
			if got > 0 {
				return false, fmt.Errorf("end of file inside a message (%d of %d bytes)", got, len(p))
			}
			return false, nil
		}
		got += n
	}
	return true, nil
}

// warmupRounds are untimed round trips before a ping's timed loop.
const warmupRounds = 50

func ping(f clientFlags) (clientResult, error) {
	rfd, wfd, err := f.endpoints(true, true)
	if err != nil {
		return clientResult{}, err
	}
	buf, err := pageBuffer(f.size)
	if err != nil {
		return clientResult{}, err
	}
	in, err := pageBuffer(f.size)
	if err != nil {
		return clientResult{}, err
	}
	roundTrip := func() error {
		if err := writeFull(wfd, buf); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		ok, err := readMsg(rfd, in)
		if err == nil && !ok {
			err = errors.New("unexpected end of file")
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		return nil
	}
	samples, elapsed, err := timeRoundTrips(f, roundTrip, max(1<<16, min(f.count, 1<<22)))
	if err != nil {
		return clientResult{}, err
	}
	if err := f.finish(wfd, rfd); err != nil {
		return clientResult{}, err
	}
	return clientResult{Samples: samples, Count: int64(len(samples)), ElapsedNs: int64(elapsed)}, nil
}

// timeRoundTrips makes warmupRounds untimed round trips, waits for the
// gate (f.gate), then times round trips for f.dur (or f.count of them),
// with room for capacity samples.
func timeRoundTrips(f clientFlags, roundTrip func() error, capacity int64) (samples []int64, elapsed time.Duration, err error) {
	for range warmupRounds {
		if err := roundTrip(); err != nil {
			return nil, 0, err
		}
	}
	if f.gate {
		if err := waitGate(); err != nil {
			return nil, 0, err
		}
	}
	samples = make([]int64, 0, capacity)
	start := time.Now()
	deadline := start.Add(f.dur)
	for i := int64(0); f.count == 0 || i < f.count; i++ {
		t0 := time.Now()
		if f.count == 0 && t0.After(deadline) {
			break
		}
		if err := roundTrip(); err != nil {
			return nil, 0, err
		}
		samples = append(samples, int64(time.Since(t0)))
	}
	return samples, time.Since(start), nil
}

// preads times pread(2)s of f.in at offset 0: on a channel's status file,
// one FUSE request each that the daemon answers at once — the floor under
// every msg operation.
func preads(f clientFlags) (clientResult, error) {
	rfd, _, err := f.endpoints(true, false)
	if err != nil {
		return clientResult{}, err
	}
	buf := make([]byte, f.size)
	pread := func() error {
		for {
			_, err := rawPread(rfd, buf, 0)
			if err != unix.EINTR {
				return err
			}
		}
	}
	for range warmupRounds {
		if err := pread(); err != nil {
			return clientResult{}, fmt.Errorf("pread: %w", err)
		}
	}
	samples := make([]int64, 0, 1<<16)
	start := time.Now()
	for time.Since(start) < f.dur {
		t0 := time.Now()
		if err := pread(); err != nil {
			return clientResult{}, fmt.Errorf("pread: %w", err)
		}
		samples = append(samples, int64(time.Since(t0)))
	}
	unix.Close(rfd)
	return clientResult{Samples: samples, Count: int64(len(samples)), ElapsedNs: int64(time.Since(start))}, nil
}

func pong(f clientFlags) error {
	rfd, wfd, err := f.endpoints(true, true)
	if err != nil {
		return err
	}
	buf, err := pageBuffer(f.size)
	if err != nil {
		return err
	}
	for {
		ok, err := readMsg(rfd, buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if !ok {
			return nil
		}
		if err := writeFull(wfd, buf); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
}

func send(f clientFlags) (clientResult, error) {
	_, wfd, err := f.endpoints(false, true)
	if err != nil {
		return clientResult{}, err
	}
	buf, err := pageBuffer(f.size)
	if err != nil {
		return clientResult{}, err
	}
	if f.gate {
		if err := waitGate(); err != nil {
			return clientResult{}, err
		}
	}
	start := time.Now()
	deadline := start.Add(f.dur)
	var n int64
	for ; f.count == 0 || n < f.count; n++ {
		// Checking the clock costs tens of nanoseconds through the vDSO.
		if f.count == 0 && time.Now().After(deadline) {
			break
		}
		if err := writeFull(wfd, buf); err != nil {
			return clientResult{}, fmt.Errorf("write: %w", err)
		}
	}
	elapsed := time.Since(start)
	if err := f.finish(wfd, -1); err != nil {
		return clientResult{}, err
	}
	return clientResult{Count: n, ElapsedNs: int64(elapsed)}, nil
}

func recv(f clientFlags) (clientResult, error) {
	rfd, _, err := f.endpoints(true, false)
	if err != nil {
		return clientResult{}, err
	}
	buf, err := pageBuffer(f.size)
	if err != nil {
		return clientResult{}, err
	}
	var n int64
	var first, last time.Time
	for f.count == 0 || n < f.count {
		ok, err := readMsg(rfd, buf)
		if err != nil {
			return clientResult{}, fmt.Errorf("read: %w", err)
		}
		if !ok {
			break
		}
		last = time.Now()
		if n == 0 {
			first = last
		}
		n++
	}
	return clientResult{Count: n, ElapsedNs: int64(last.Sub(first))}, nil
}

// region is one shared region being set up, used and removed, timed.
type region struct {
	dir, path string
	devshm    bool
	fd        int
	mem       []byte
}

func newRegion(base string, devshm bool, name string) *region {
	dir := filepath.Join(base, name)
	return &region{dir: dir, path: filepath.Join(dir, "shm"), devshm: devshm, fd: -1}
}

// make does mkdir, then open + ftruncate + mmap, returning the time of each.
func (r *region) make(size int64) (mkdir, mapped time.Duration, err error) {
	t0 := time.Now()
	if err := retry(func() error { return unix.Mkdir(r.dir, 0o700) }); err != nil {
		return 0, 0, fmt.Errorf("mkdir %s: %w", r.dir, err)
	}
	t1 := time.Now()
	mode := unix.O_RDWR | unix.O_CLOEXEC
	if r.devshm {
		mode |= unix.O_CREAT | unix.O_EXCL
	}
	if err := retry(func() (err error) { r.fd, err = unix.Open(r.path, mode, 0o600); return err }); err != nil {
		return 0, 0, fmt.Errorf("open %s: %w", r.path, err)
	}
	if err := retry(func() error { return unix.Ftruncate(r.fd, size) }); err != nil {
		return 0, 0, fmt.Errorf("ftruncate %s: %w", r.path, err)
	}
	mem, err := unix.Mmap(r.fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return 0, 0, fmt.Errorf("mmap %s: %w", r.path, err)
	}
	r.mem = mem
	t2 := time.Now()
	return t1.Sub(t0), t2.Sub(t1), nil
}

// touch stores to every page, as a producer's first pass does.
func (r *region) touch() time.Duration {
	t0 := time.Now()
	ps := unix.Getpagesize()
	for off := 0; off < len(r.mem); off += ps {
		r.mem[off] = 1
	}
	return time.Since(t0)
}

// remove does munmap + close, then rmdir (and unlink, in /dev/shm).
func (r *region) remove() (unmap, removed time.Duration, err error) {
	t0 := time.Now()
	if r.mem != nil {
		if err := unix.Munmap(r.mem); err != nil {
			return 0, 0, fmt.Errorf("munmap %s: %w", r.path, err)
		}
		r.mem = nil
	}
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
	t1 := time.Now()
	if r.devshm {
		if err := retry(func() error { return unix.Unlink(r.path) }); err != nil {
			return 0, 0, fmt.Errorf("unlink %s: %w", r.path, err)
		}
	}
	if err := retry(func() error { return unix.Rmdir(r.dir) }); err != nil {
		return 0, 0, fmt.Errorf("rmdir %s: %w", r.dir, err)
	}
	return t1.Sub(t0), time.Since(t1), nil
}

// retry runs a system call until it does not fail with EINTR.
func retry(call func() error) error {
	for {
		if err := call(); err != unix.EINTR {
			return err
		}
	}
}

// regionDirs are the directories shm-setup and shm-copy make regions in:
// the ipcfs mount, then /dev/shm's if given.
func (f clientFlags) regionDirs() []regionDir {
	dirs := []regionDir{{f.dir, false}}
	if f.devDir != "" {
		dirs = append(dirs, regionDir{f.devDir, true})
	}
	return dirs
}

type regionDir struct {
	path   string
	devshm bool
}

// shmSetup makes, touches and removes regions, alternating between the
// kinds (which goes first alternates too), so that both see the same
// machine.
func shmSetup(f clientFlags) (clientResult, error) {
	var res clientResult
	dirs := f.regionDirs()
	for i := range f.reps {
		for k := range dirs {
			d := dirs[(i+k)%len(dirs)]
			r := newRegion(d.path, d.devshm, fmt.Sprintf("setup-%d-%d", os.Getpid(), i))
			mkdir, mapped, err := r.make(f.region)
			if err != nil {
				r.remove()
				return res, err
			}
			touch := r.touch()
			unmap, removed, err := r.remove()
			if err != nil {
				return res, err
			}
			t := shmTimes{
				Mkdir: int64(mkdir), Map: int64(mapped), Touch: int64(touch),
				Unmap: int64(unmap), Remove: int64(removed), Region: f.region,
			}
			if d.devshm {
				res.DevSetups = append(res.DevSetups, t)
			} else {
				res.Setups = append(res.Setups, t)
			}
		}
	}
	return res, nil
}

// shmCopy measures the copy bandwidth into and out of a mapping whose
// pages are all faulted in and dirty (the steady state of a region in
// use), one pass of the whole region at a time, alternating between the
// kinds.
func shmCopy(f clientFlags) (res clientResult, err error) {
	var regions []*region
	defer func() {
		for _, r := range regions {
			if _, _, rerr := r.remove(); rerr != nil && err == nil {
				err = rerr
			}
		}
	}()
	for _, d := range f.regionDirs() {
		r := newRegion(d.path, d.devshm, fmt.Sprintf("copy-%d", os.Getpid()))
		regions = append(regions, r)
		if _, _, err := r.make(f.region); err != nil {
			return res, err
		}
		r.touch()
	}
	src, err := pageBuffer(int(f.region))
	if err != nil {
		return res, err
	}
	dst, err := pageBuffer(int(f.region))
	if err != nil {
		return res, err
	}
	for _, r := range regions {
		copy(r.mem, src)
		copy(dst, r.mem)
	}
	type total struct {
		in, out time.Duration
		passes  int64
	}
	totals := make([]total, len(regions))
	start := time.Now()
	for pass := 0; time.Since(start) < f.dur; pass++ {
		for k := range regions {
			// Which goes first alternates: neither always finds the
			// caches as the other left them.
			i := (k + pass) % len(regions)
			r := regions[i]
			t0 := time.Now()
			copy(r.mem, src)
			t1 := time.Now()
			copy(dst, r.mem)
			totals[i].in += t1.Sub(t0)
			totals[i].out += time.Since(t1)
			totals[i].passes++
		}
	}
	bps := func(t total, d time.Duration) float64 { return float64(t.passes*f.region) / d.Seconds() }
	res.CopyIn, res.CopyOut = bps(totals[0], totals[0].in), bps(totals[0], totals[0].out)
	if len(totals) > 1 {
		res.DevCopyIn, res.DevCopyOut = bps(totals[1], totals[1].in), bps(totals[1], totals[1].out)
	}
	return res, nil
}
