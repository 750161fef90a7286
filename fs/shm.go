package fs

import (
	"fmt"

	"bazil.org/fuse"
)

// shmHandle is an open shm file. The kernel's page cache is what processes
// map; this serves its page-ins (reads) and write-backs (writes) from the
// channel's region. A removed channel's region lives until its last handle
// is released (mappings hold their file open).
type shmHandle struct {
	s *Server
	c *channel
}

var (
	_ requestReader = (*shmHandle)(nil)
	_ requestWriter = (*shmHandle)(nil)
)

// read serves a page-in (or a read(2)) from the region.
func (h *shmHandle) read(req *fuse.ReadRequest) error {
	buf := getBuf(req.Size)
	defer putBuf(buf) // Respond has copied it
	n, err := h.c.shm.ReadAt(buf, req.Offset)
	if err != nil {
		return fmt.Errorf("read shm of channel %q: %w", h.s.nameOf(h.c), err)
	}
	req.Respond(&fuse.ReadResponse{Data: buf[:n]})
	return nil
}

// write serves a write-back (or a write(2)); one that would grow the
// region must come from its owner (or root).
func (h *shmHandle) write(req *fuse.WriteRequest) error {
	if end := req.Offset + int64(len(req.Data)); end > h.c.shm.Size() {
		h.s.mu.RLock()
		err := checkResize(h.c, kindShm, req.Uid)
		h.s.mu.RUnlock()
		if err != nil {
			return fmt.Errorf("write of %d bytes at %d: %w", len(req.Data), req.Offset, err)
		}
	}
	n, err := h.c.shm.WriteAt(req.Data, req.Offset)
	if err != nil {
		return fmt.Errorf("write shm of channel %q: %w", h.s.nameOf(h.c), err)
	}
	req.Respond(&fuse.WriteResponse{Size: n})
	return nil
}

func (h *shmHandle) release() {
	s, c := h.s, h.c
	s.mu.Lock()
	c.shmOpen--
	if c.shmOpen == 0 && c.backing != 0 {
		// The kernel's files hold the memory file themselves; the ID is
		// only for opens, and the next open registers the file again.
		if err := s.conn.CloseBacking(c.backing); err != nil {
			s.log.Warn("dropping a passthrough backing file failed", "channel", c.name, "err", err)
		}
		c.backing = 0
		c.shm.Unpin()
	}
	free := c.shmOpen == 0 && c.removed.Load() && !c.shmFreed
	c.shmFreed = c.shmFreed || free
	name := c.name
	s.mu.Unlock()
	if free {
		c.shm.Close()
		s.log.Debug("shared region freed", "channel", name)
	}
}

// openShmLocked counts an open of c's shm and, on a mount with FUSE
// passthrough, makes sure c.backing names the region's memory file: the
// kernel then maps that file's pages into every process that maps shm,
// with no page cache of its own, nothing written back, and memory held
// once and charged to whoever faults it in. Every open of one shm must
// name the same file while any is open (the kernel refuses another), so
// the region is pinned until the last is released. Requires Server.mu.
func (s *Server) openShmLocked(c *channel) error {
	if s.conn.Passthrough() && c.backing == 0 {
		fd, err := c.shm.Pin()
		if err != nil {
			return err
		}
		id, err := s.conn.OpenBacking(fd)
		if err != nil {
			c.shm.Unpin()
			return fmt.Errorf("registering the passthrough backing file: %w", err)
		}
		c.backing = id
	}
	c.shmOpen++
	return nil
}
