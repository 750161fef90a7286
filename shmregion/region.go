// Package shmregion is the backing store of a channel's shared-memory region:
// a resizable array of bytes with a size limit. The FUSE layer serves the
// kernel's page-ins (READ), write-backs (WRITE) and truncates from it; the
// kernel page cache is what processes map.
//
// A Region lives in an anonymous memory file (memfd), created when the
// region first grows beyond size 0 and closed when it shrinks back to 0,
// so an unused region holds no file descriptor. Pages never written cost
// no memory, growing reads back as zeros, shrinking frees the tail, the
// bytes are not on the Go heap, and Close gives the memory back to the
// system.
//
// # Limits
//
// Besides its size limit, a Region may be given a [Charger], charged with
// the region's size rounded up to whole pages whenever it grows (and
// released when it shrinks or closes): the whole size is charged at once,
// so a process that maps the region never meets a failure later, when it
// touches a page. And a [FileLimit] bounds the memory files of all regions
// that share it.
//
// # Errors
//
// Methods return errors that wrap [ErrTooLarge] (size or write end beyond
// the limit: EFBIG), [ErrNegative] (negative size or offset: EINVAL),
// [ErrNoFiles] (no file descriptor for a memory file: the FileLimit is
// reached, or the process's) or [ErrClosed] (use after Close: EIO), or the
// error of the Charger that refused a growth; test with [errors.Is]. Any
// other error is a failed system call, wrapped with what was being done;
// it means the system is out of memory or the program has a bug (EIO).
//
// # Parallelism
//
// A Region is safe for concurrent use. Reads and writes inside the current
// size run in parallel with each other; Truncate, a write that grows the
// region, and Close run alone. A read running in parallel with a write to
// the same bytes may see some of the new bytes and some of the old, as with
// pread and pwrite on a file.
package shmregion

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

var (
	// ErrTooLarge means a size or the end of a write is beyond the
	// region's limit.
	ErrTooLarge = errors.New("shmregion: beyond the size limit")
	// ErrNegative means a size or offset is negative.
	ErrNegative = errors.New("shmregion: negative size or offset")
	// ErrClosed means the Region was used after Close.
	ErrClosed = errors.New("shmregion: region is closed")
	// ErrNoFiles means no memory file could be created: the FileLimit,
	// or the process's limit on open files, is reached.
	ErrNoFiles = errors.New("shmregion: out of file descriptors for shared regions")
)

// A Charger is charged with a region's memory: Charge(n) either accounts
// n more bytes and returns nil, or refuses with an error and accounts
// nothing; Release(n) gives back n bytes charged before.
type Charger interface {
	Charge(n int64) error
	Release(n int64)
}

// PageSize is the unit regions are charged in.
const PageSize = 4096

// Config is what a Region is made with.
type Config struct {
	Max    int64      // the largest size, ≥ 0
	Memory Charger    // charged with the size rounded up to pages; nil: nothing is charged
	Files  *FileLimit // bounds the memory files; nil: only the process's limit
}

// A Region is a shared-memory region's contents: Size() bytes, at most
// Max(). The zero value is not usable; call New or NewWith.
type Region struct {
	cfg Config // immutable

	// mu guards the fields below. Holders of the read lock may read and
	// write the bytes in [0, size) through fd; changing size or fd
	// (Truncate, a growing WriteAt, Close) needs the write lock.
	// Invariants: fd >= 0 exactly when size > 0 or pins > 0, and then the
	// memfd's size equals size; charged == pages(size).
	mu      sync.RWMutex
	fd      int             // GUARDED_BY(mu); -1 when there is no memory file
	pins    int             // GUARDED_BY(mu): Pins not yet Unpinned
	size    int64           // GUARDED_BY(mu)
	charged int64           // GUARDED_BY(mu): bytes charged to cfg.Memory
	closed  bool            // GUARDED_BY(mu)
	cleanup runtime.Cleanup // GUARDED_BY(mu): closes fd if the Region is dropped without Close
}

// New returns an empty (size 0) region whose size may never exceed max,
// charged to nothing. max < 0 is ErrNegative.
func New(max int64) (*Region, error) { return NewWith(Config{Max: max}) }

// NewWith returns an empty (size 0) region made with cfg. cfg.Max < 0 is
// ErrNegative. It holds no file descriptor until it first grows.
func NewWith(cfg Config) (*Region, error) {
	if cfg.Max < 0 {
		return nil, fmt.Errorf("shmregion: new region of at most %d bytes: %w", cfg.Max, ErrNegative)
	}
	return &Region{cfg: cfg, fd: -1}, nil
}

// Max returns the limit on the size.
func (r *Region) Max() int64 { return r.cfg.Max }

// Size returns the current size in bytes; 0 after Close.
func (r *Region) Size() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.size
}

// Charged returns the bytes charged to the Config's Charger now: the size
// rounded up to whole pages (0 after Close).
func (r *Region) Charged() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.charged
}

// Allocated returns the bytes of memory the region occupies now, as the
// kernel counts them (whole pages; pages never written, or freed by
// shrinking, count nothing). It may be far below Size.
func (r *Region) Allocated() (int64, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return 0, fmt.Errorf("shmregion: allocated: %w", ErrClosed)
	}
	if r.fd < 0 {
		return 0, nil
	}
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstat(r.fd, &st) }); err != nil {
		return 0, fmt.Errorf("shmregion: allocated: fstat: %w", err)
	}
	return st.Blocks * 512, nil
}

// pages rounds n up to whole pages.
func pages(n int64) int64 { return (n + PageSize - 1) / PageSize * PageSize }

// resize sets the size to size (> 0 or 0) with the write lock held:
// charges or releases the difference, creates or closes the memory file,
// and sets its size unless skipFile (a growing write sets it itself). On
// error nothing has changed.
func (r *Region) resize(size int64, skipFile bool) error {
	want := pages(size)
	if more := want - r.charged; more > 0 && r.cfg.Memory != nil {
		if err := r.cfg.Memory.Charge(more); err != nil {
			return err
		}
	}
	undoCharge := func() {
		if more := want - r.charged; more > 0 && r.cfg.Memory != nil {
			r.cfg.Memory.Release(more)
		}
	}
	switch {
	case size == 0 && r.pins == 0:
		if r.fd >= 0 {
			r.closeFile()
		}
	case r.fd < 0:
		if err := r.openFile(); err != nil {
			undoCharge()
			return err
		}
		fallthrough
	default:
		if !skipFile {
			if err := ignoringEINTR(func() error { return unix.Ftruncate(r.fd, size) }); err != nil {
				if r.size == 0 {
					r.closeFile()
				}
				undoCharge()
				return fmt.Errorf("ftruncate: %w", err)
			}
		}
	}
	if less := r.charged - want; less > 0 && r.cfg.Memory != nil {
		r.cfg.Memory.Release(less)
	}
	r.size, r.charged = size, want
	return nil
}

// openFile creates the memory file. Requires the write lock and fd < 0.
func (r *Region) openFile() error {
	if !r.cfg.Files.acquire() {
		return fmt.Errorf("%d memory files open: %w", r.cfg.Files.Max(), ErrNoFiles)
	}
	fd, err := unix.MemfdCreate("ipcfs-shm", unix.MFD_CLOEXEC)
	if err != nil {
		r.cfg.Files.release()
		if err == unix.EMFILE || err == unix.ENFILE {
			return fmt.Errorf("memfd_create: %v: %w", err, ErrNoFiles)
		}
		return fmt.Errorf("memfd_create: %w", err)
	}
	r.fd = fd
	// A Region dropped without Close must not leak its memory. The
	// cleanup holds only the fd number; closeFile stops it before closing
	// the fd, so it can never close a reused descriptor.
	files := r.cfg.Files
	r.cleanup = runtime.AddCleanup(r, func(fd int) { unix.Close(fd); files.release() }, fd)
	return nil
}

// closeFile closes the memory file. Requires the write lock and fd >= 0.
func (r *Region) closeFile() error {
	r.cleanup.Stop()
	fd := r.fd
	r.fd = -1
	r.cfg.Files.release()
	// Never retry close: on Linux the descriptor is gone even on EINTR.
	return unix.Close(fd)
}

// Pin returns the region's memory file, creating it (empty) if the region
// has none, and keeps that same file until the matching Unpin, even while
// the size is 0. A file that processes map directly (FUSE passthrough
// hands the kernel the descriptor) must stay the one the region reads and
// writes. The caller must not close the descriptor. It fails with
// ErrClosed after Close, and with ErrNoFiles if no memory file can be made.
func (r *Region) Pin() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return -1, fmt.Errorf("shmregion: pin: %w", ErrClosed)
	}
	if r.fd < 0 {
		if err := r.openFile(); err != nil {
			return -1, fmt.Errorf("shmregion: pin: %w", err)
		}
	}
	r.pins++
	return r.fd, nil
}

// Unpin undoes one Pin. When none is left and the size is 0, the memory
// file is closed, as an unpinned region of size 0 has none.
func (r *Region) Unpin() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pins > 0 {
		r.pins--
	}
	if r.pins == 0 && r.size == 0 && r.fd >= 0 && !r.closed {
		r.closeFile()
	}
}

// Truncate sets the size to size. Growing makes the new bytes read as zeros
// and charges the new pages; shrinking discards the bytes past size, frees
// their memory and releases their charge. It fails with ErrNegative if
// size < 0, with ErrTooLarge if size > Max(), with the Charger's error if
// it refuses the growth, with ErrNoFiles if no memory file can be made,
// and then changes nothing.
func (r *Region) Truncate(size int64) error {
	if size < 0 {
		return fmt.Errorf("shmregion: truncate to %d: %w", size, ErrNegative)
	}
	if size > r.cfg.Max {
		return fmt.Errorf("shmregion: truncate to %d, limit %d: %w", size, r.cfg.Max, ErrTooLarge)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("shmregion: truncate to %d: %w", size, ErrClosed)
	}
	if size == r.size {
		return nil
	}
	if err := r.resize(size, false); err != nil {
		return fmt.Errorf("shmregion: truncate to %d: %w", size, err)
	}
	return nil
}

// ReadAt reads up to len(p) bytes at offset off into p and returns how many
// it read: min(len(p), Size()-off), or 0 when off ≥ Size(). Reading at or
// past the end is not an error: ReadAt returns a short count, or 0, with a
// nil error, never io.EOF. A negative off is ErrNegative.
func (r *Region) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("shmregion: read at %d: %w", off, ErrNegative)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return 0, fmt.Errorf("shmregion: read at %d: %w", off, ErrClosed)
	}
	if off >= r.size {
		return 0, nil
	}
	if avail := r.size - off; int64(len(p)) > avail {
		p = p[:avail]
	}
	n, err := pread(r.fd, p, off)
	if err != nil {
		return n, fmt.Errorf("shmregion: read %d bytes at %d: %w", len(p), off, err)
	}
	return n, nil
}

// WriteAt writes p at offset off and returns len(p). If the write ends past
// Size(), the region grows to its end first (charged as Truncate is), the
// bytes between the old size and off reading as zeros. If off+len(p) >
// Max() it writes nothing and returns ErrTooLarge; a negative off is
// ErrNegative; a growth the Charger refuses, or with no memory file to be
// had, writes nothing and returns that error. An empty p writes nothing
// and never grows the region. If a write fails with another error, the
// size is unchanged, but bytes inside the old size may hold part of p.
func (r *Region) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("shmregion: write at %d: %w", off, ErrNegative)
	}
	if off > r.cfg.Max || int64(len(p)) > r.cfg.Max-off {
		return 0, fmt.Errorf("shmregion: write of %d bytes at %d, limit %d: %w", len(p), off, r.cfg.Max, ErrTooLarge)
	}
	end := off + int64(len(p))

	// Most writes (the kernel writing back mapped pages) land inside the
	// region and share the read lock.
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return 0, fmt.Errorf("shmregion: write at %d: %w", off, ErrClosed)
	}
	if len(p) == 0 {
		r.mu.RUnlock()
		return 0, nil
	}
	if end <= r.size {
		n, err := pwrite(r.fd, p, off)
		r.mu.RUnlock()
		if err != nil {
			return n, fmt.Errorf("shmregion: write %d bytes at %d: %w", len(p), off, err)
		}
		return n, nil
	}
	r.mu.RUnlock()

	// The write grows the region: do it alone, so no reader sees the new
	// size before the bytes and a failure can be undone.
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, fmt.Errorf("shmregion: write at %d: %w", off, ErrClosed)
	}
	old := r.size
	if end <= old { // another write grew it meanwhile
		n, err := pwrite(r.fd, p, off)
		if err != nil {
			return n, fmt.Errorf("shmregion: write %d bytes at %d: %w", len(p), off, err)
		}
		return n, nil
	}
	oldCharged := r.charged
	if err := r.resize(end, true); err != nil { // charges, and makes the memory file if need be
		return 0, fmt.Errorf("shmregion: write %d bytes at %d: %w", len(p), off, err)
	}
	n, err := pwrite(r.fd, p, off) // extends the memfd, zero-filling any gap
	if err != nil {
		if terr := ignoringEINTR(func() error { return unix.Ftruncate(r.fd, old) }); terr != nil {
			err = errors.Join(err, fmt.Errorf("restoring size %d: %w", old, terr))
		}
		if r.cfg.Memory != nil {
			r.cfg.Memory.Release(r.charged - oldCharged)
		}
		r.size, r.charged = old, oldCharged
		if old == 0 {
			r.closeFile()
		}
		return 0, fmt.Errorf("shmregion: write %d bytes at %d: %w", len(p), off, err)
	}
	return n, nil
}

// Close frees the region's memory and releases its charge. Later calls of
// every method but Max fail with ErrClosed; Close itself is idempotent and
// returns nil after the first call.
func (r *Region) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.cfg.Memory != nil && r.charged > 0 {
		r.cfg.Memory.Release(r.charged)
	}
	r.size, r.charged = 0, 0
	if r.fd < 0 {
		return nil
	}
	if err := r.closeFile(); err != nil {
		return fmt.Errorf("shmregion: close: %w", err)
	}
	return nil
}

// A FileLimit bounds the memory files of the regions that share it, so
// that a process keeps the descriptors it needs for everything else. The
// zero value and nil have no limit. Safe for concurrent use.
type FileLimit struct {
	max int // 0: no limit; immutable

	mu   sync.Mutex // guards used
	used int        // GUARDED_BY(mu)
}

// NewFileLimit returns a limit of max memory files (max ≤ 0: no limit).
func NewFileLimit(max int) *FileLimit { return &FileLimit{max: max} }

// Max returns the limit (0: none).
func (l *FileLimit) Max() int {
	if l == nil {
		return 0
	}
	return l.max
}

// InUse returns how many memory files are open under the limit.
func (l *FileLimit) InUse() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used
}

func (l *FileLimit) acquire() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.used >= l.max {
		return false
	}
	l.used++
	return true
}

func (l *FileLimit) release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.used--
	l.mu.Unlock()
}

// pread reads len(p) bytes at off, retrying on EINTR and short counts.
func pread(fd int, p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Pread(fd, p[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		if n == 0 { // the memfd is shorter than the size we track
			return done, io.ErrUnexpectedEOF
		}
		done += n
	}
	return done, nil
}

// pwrite writes len(p) bytes at off, retrying on EINTR and short counts.
func pwrite(fd int, p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Pwrite(fd, p[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, io.ErrShortWrite
		}
		done += n
	}
	return done, nil
}

// ignoringEINTR calls f until it returns something other than EINTR.
func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}
