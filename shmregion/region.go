// Package shmregion is the backing store of a channel's shared-memory region:
// a resizable array of bytes with a size limit. The FUSE layer serves the
// kernel's page-ins (READ), write-backs (WRITE) and truncates from it; the
// kernel page cache is what processes map.
//
// A Region lives in an anonymous memory file (memfd). Pages never written
// cost no memory, growing reads back as zeros, shrinking frees the tail, the
// bytes are not on the Go heap, and Close gives the memory back to the
// system.
//
// # Errors
//
// Methods return errors that wrap [ErrTooLarge] (size or write end beyond
// the limit: EFBIG), [ErrNegative] (negative size or offset: EINVAL) or
// [ErrClosed] (use after Close: EIO); test with [errors.Is]. Any other error
// is a failed system call, wrapped with what was being done; it means the
// system is out of memory or the program has a bug (EIO).
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
)

// A Region is a shared-memory region's contents: Size() bytes, at most
// Max(). The zero value is not usable; call New.
type Region struct {
	max     int64           // immutable
	cleanup runtime.Cleanup // closes fd if the Region is dropped without Close; immutable

	// mu guards fd and size. Holders of the read lock may read and write
	// the bytes in [0, size) through fd; changing size or fd (Truncate, a
	// growing WriteAt, Close) needs the write lock. Invariant while
	// fd >= 0: the memfd's size equals size.
	mu   sync.RWMutex
	fd   int   // GUARDED_BY(mu); -1 once closed
	size int64 // GUARDED_BY(mu)
}

// New returns an empty (size 0) region whose size may never exceed max.
// max < 0 is ErrNegative. It fails only if the system cannot create a memory
// file (out of file descriptors or memory).
func New(max int64) (*Region, error) {
	if max < 0 {
		return nil, fmt.Errorf("shmregion: new region of at most %d bytes: %w", max, ErrNegative)
	}
	fd, err := unix.MemfdCreate("ipcfs-shm", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("shmregion: memfd_create: %w", err)
	}
	r := &Region{max: max, fd: fd}
	// A Region dropped without Close must not leak its memory. The
	// cleanup holds only the fd number; Close stops it before closing
	// the fd, so it can never close a reused descriptor.
	r.cleanup = runtime.AddCleanup(r, func(fd int) { unix.Close(fd) }, fd)
	return r, nil
}

// Max returns the limit on the size given to New.
func (r *Region) Max() int64 { return r.max }

// Size returns the current size in bytes; 0 after Close.
func (r *Region) Size() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.size
}

// Allocated returns the bytes of memory the region occupies now, as the
// kernel counts them (whole pages; pages never written, or freed by
// shrinking, count nothing). It may be far below Size.
func (r *Region) Allocated() (int64, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.fd < 0 {
		return 0, fmt.Errorf("shmregion: allocated: %w", ErrClosed)
	}
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstat(r.fd, &st) }); err != nil {
		return 0, fmt.Errorf("shmregion: allocated: fstat: %w", err)
	}
	return st.Blocks * 512, nil
}

// Truncate sets the size to size. Growing makes the new bytes read as zeros;
// shrinking discards the bytes past size and frees their memory. It fails
// with ErrNegative if size < 0 and with ErrTooLarge if size > Max(), and then
// changes nothing.
func (r *Region) Truncate(size int64) error {
	if size < 0 {
		return fmt.Errorf("shmregion: truncate to %d: %w", size, ErrNegative)
	}
	if size > r.max {
		return fmt.Errorf("shmregion: truncate to %d, limit %d: %w", size, r.max, ErrTooLarge)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd < 0 {
		return fmt.Errorf("shmregion: truncate to %d: %w", size, ErrClosed)
	}
	if size == r.size {
		return nil
	}
	if err := ignoringEINTR(func() error { return unix.Ftruncate(r.fd, size) }); err != nil {
		return fmt.Errorf("shmregion: truncate to %d: %w", size, err)
	}
	r.size = size
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
	if r.fd < 0 {
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
// Size(), the region grows to its end first, the bytes between the old size
// and off reading as zeros. If off+len(p) > Max() it writes nothing and
// returns ErrTooLarge; a negative off is ErrNegative. An empty p writes
// nothing and never grows the region. If a write fails with another error,
// the size is unchanged, but bytes inside the old size may hold part of p.
func (r *Region) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("shmregion: write at %d: %w", off, ErrNegative)
	}
	if off > r.max || int64(len(p)) > r.max-off {
		return 0, fmt.Errorf("shmregion: write of %d bytes at %d, limit %d: %w", len(p), off, r.max, ErrTooLarge)
	}
	end := off + int64(len(p))

	// Most writes (the kernel writing back mapped pages) land inside the
	// region and share the read lock.
	r.mu.RLock()
	if r.fd < 0 {
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
	if r.fd < 0 {
		return 0, fmt.Errorf("shmregion: write at %d: %w", off, ErrClosed)
	}
	old := r.size
	n, err := pwrite(r.fd, p, off) // extends the memfd, zero-filling any gap
	if err != nil {
		if end > old {
			if terr := ignoringEINTR(func() error { return unix.Ftruncate(r.fd, old) }); terr != nil {
				err = errors.Join(err, fmt.Errorf("restoring size %d: %w", old, terr))
			}
		}
		return 0, fmt.Errorf("shmregion: write %d bytes at %d: %w", len(p), off, err)
	}
	r.size = max(old, end)
	return n, nil
}

// Close frees the region's memory. Later calls of every method but Max fail
// with ErrClosed; Close itself is idempotent and returns nil after the first
// call.
func (r *Region) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd < 0 {
		return nil
	}
	r.cleanup.Stop()
	fd := r.fd
	r.fd, r.size = -1, 0
	// Never retry close: on Linux the descriptor is gone even on EINTR.
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("shmregion: close: %w", err)
	}
	return nil
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
