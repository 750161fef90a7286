package fs

import (
	"errors"
	"fmt"
	"math"
	"time"

	"bazil.org/fuse"

	"github.com/ipcfs/ipcfs/shmregion"
)

// lookup finds a channel in the root or a file in a channel.
func (s *Server) lookup(r *fuse.LookupRequest) error {
	if err := checkName(r.Name); err != nil {
		return err
	}
	resp, err := s.lookupLocked(r)
	if errors.Is(err, errNoEntry) && s.cfg.NATS != nil && r.Node == fuse.RootID && r.Name != limitsName {
		resp, err = s.lookupNATS(r)
	}
	if err != nil {
		return err
	}
	r.Respond(resp) // not under Server.mu: the reply may wait for the kernel
	return nil
}

// lookupLocked is lookup's work under Server.mu.
func (s *Server) lookupLocked(r *fuse.LookupRequest) (*fuse.LookupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c *channel
	k := kindDir
	if r.Node == fuse.RootID && r.Name == limitsName {
		return s.lookupLimits(r)
	}
	if r.Node == fuse.RootID {
		var ok bool
		if c, ok = s.names[r.Name]; !ok {
			return nil, fmt.Errorf("lookup %q: %w", r.Name, errNoEntry)
		}
	} else {
		dir, dk, err := s.channelOf(r.Node)
		if err != nil || dk != kindDir || dir.removed.Load() {
			return nil, fmt.Errorf("lookup %q in node %v: %w", r.Name, r.Node, errNoEntry)
		}
		var ok bool
		if k, ok = entryKind(r.Name); !ok {
			return nil, fmt.Errorf("lookup %q in channel %q: %w", r.Name, dir.name, errNoEntry)
		}
		c = dir
	}
	c.lookups++
	resp := &fuse.LookupResponse{
		Node:       nodeID(c.serial, k),
		EntryValid: entryValid,
		Attr:       c.attr(k),
	}
	if k == kindMsg {
		resp.Node, resp.EntryValid = s.newMsgInstance(c), 0
	}
	return resp, nil
}

// newMsgInstance returns a node for c's msg (see msgInstanceBit) and
// counts one more kernel reference to it: the last one returned, if no
// file has been opened on it yet, else a new one. So lookups that do not
// open (stat, ls -l, and the kernel's revalidation of a dentry that a
// racing open just made) find the node they knew, and only an open(2)
// makes the next lookup get a node of its own. Requires Server.mu.
func (s *Server) newMsgInstance(c *channel) fuse.NodeID {
	if m, ok := s.msgNodes[c.msgFresh]; ok {
		m.lookups++
		return c.msgFresh
	}
	s.nextMsg++
	id := fuse.NodeID(msgInstanceBit | s.nextMsg)
	s.msgNodes[id] = &msgInstance{c: c, lookups: 1}
	c.msgFresh = id
	return id
}

// attr returns any node's attributes.
func (s *Server) attr(id fuse.NodeID) (fuse.Attr, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if id == fuse.RootID {
		return s.rootAttr(), nil
	}
	if id == limitsNode {
		return s.limitsAttr(), nil
	}
	c, k, err := s.channelOf(id)
	if err != nil {
		return fuse.Attr{}, fmt.Errorf("getattr node %v: %w", id, err)
	}
	return c.attr(k), nil
}

// forget drops n kernel references to a node.
func (s *Server) forget(id fuse.NodeID, n uint64) {
	if id == fuse.RootID {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, err := s.channelOf(id)
	if err != nil {
		return
	}
	if m, ok := s.msgNodes[id]; ok {
		n = min(n, m.lookups)
		if m.lookups -= n; m.lookups == 0 {
			delete(s.msgNodes, id)
		}
	}
	c.lookups -= min(n, c.lookups)
	s.dropIfForgotten(c)
}

// setattr changes a channel's owner and mode (its files follow), shm's
// size, and accepts what the shell does on its way to writing (truncating
// msg and ctl to 0, setting times).
func (s *Server) setattr(r *fuse.SetattrRequest) error {
	if r.Node == fuse.RootID {
		if r.Valid.Mode() || r.Valid.Uid() || r.Valid.Gid() || r.Valid.Size() {
			return fmt.Errorf("setattr on the root: %w", errNotPermitted)
		}
		a, _ := s.attr(r.Node)
		r.Respond(&fuse.SetattrResponse{Attr: a})
		return nil
	}
	if r.Node == limitsNode {
		return fmt.Errorf("setattr: %w", errLimitsFile)
	}
	ownerChange := r.Valid.Mode() || r.Valid.Uid() || r.Valid.Gid()
	if ownerChange && s.cfg.NATS != nil {
		if err := s.setOwnerShared(r); err != nil {
			return err
		}
	}
	s.mu.Lock()
	c, k, err := s.channelOf(r.Node)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("setattr node %v: %w", r.Node, err)
	}
	if ownerChange && k != kindDir {
		s.mu.Unlock()
		return fmt.Errorf("chmod/chown of a channel's file (change the channel directory instead): %w", errNotPermitted)
	}
	if r.Valid.Size() {
		if err := checkResize(c, k, r.Header.Uid); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	if ownerChange {
		if r.Valid.Mode() {
			c.perm = r.Mode.Perm()
		}
		if r.Valid.Uid() {
			c.uid = r.Uid
			c.acct.SetOwner(r.Uid)
		}
		if r.Valid.Gid() {
			c.gid = r.Gid
		}
		c.changed = time.Now()
	}
	s.mu.Unlock()

	if r.Valid.Size() {
		if err := s.truncate(c, k, r.Size); err != nil {
			return err
		}
	}
	if ownerChange {
		s.invalidateFiles(c)
	}
	s.mu.RLock()
	a := c.attr(k)
	s.mu.RUnlock()
	r.Respond(&fuse.SetattrResponse{Attr: a})
	return nil
}

// truncate sets a file's size: shm's for real; msg and ctl accept 0 (the
// shell's O_TRUNC) and nothing else.
func (s *Server) truncate(c *channel, k kind, size uint64) error {
	switch k {
	case kindShm:
		if size > math.MaxInt64 { // the kernel's limit is below, but keep the conversion honest
			return fmt.Errorf("truncate shm of %q to %d: %w", s.nameOf(c), size, shmregion.ErrTooLarge)
		}
		if err := c.shm.Truncate(int64(size)); err != nil {
			return fmt.Errorf("truncate shm of channel %q: %w", s.nameOf(c), err)
		}
		return nil
	case kindMsg, kindCtl:
		if size == 0 {
			return nil
		}
	case kindStatus:
		return fmt.Errorf("truncate status: %w", errReadOnly)
	}
	return fmt.Errorf("truncate to %d: %w", size, errBadSize)
}

// invalidateFiles makes the kernel forget the cached attributes of a
// channel's files, whose modes and owners follow the directory's.
func (s *Server) invalidateFiles(c *channel) {
	s.mu.RLock()
	name := c.name
	nodes := make([]fuse.NodeID, 0, len(channelEntries))
	for _, e := range channelEntries {
		nodes = append(nodes, nodeID(c.serial, e.kind))
	}
	for id, m := range s.msgNodes {
		if m.c == c {
			nodes = append(nodes, id)
		}
	}
	s.mu.RUnlock()
	for _, id := range nodes {
		// Offset -1: attributes only. (Offset 0 would drop shm's cached pages.)
		err := s.conn.InvalidateNode(id, -1, 0)
		if err != nil && !errors.Is(err, fuse.ErrNotCached) {
			s.log.Warn("invalidating cached attributes failed", "channel", name, "node", id, "err", err)
		}
	}
}

// open opens a directory or one of a channel's files.
func (s *Server) open(r *fuse.OpenRequest) error {
	if r.Dir {
		// A listing is a snapshot taken when reading starts (offset 0),
		// so a listing in progress is consistent.
		node := r.Node
		h := &textHandle{generate: func() ([]byte, error) { return s.listing(node), nil }}
		r.Respond(&fuse.OpenResponse{Handle: s.addHandle(h)})
		return nil
	}
	if r.Node == limitsNode {
		return s.openLimits(r)
	}
	read := r.Flags.IsReadOnly() || r.Flags.IsReadWrite()
	write := r.Flags.IsWriteOnly() || r.Flags.IsReadWrite()
	s.mu.Lock()
	c, k, err := s.channelOf(r.Node)
	if err == nil && c.removed.Load() {
		// The path was looked up before an rmdir that came first: as if
		// the lookup had come after it.
		err = errNoEntry
	}
	if err == nil {
		err = checkOpen(c, k, write, r.Header.Uid)
	}
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("open node %v: %w", r.Node, err)
	}
	var backing int32
	if k == kindShm {
		if err := s.openShmLocked(c); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("open shm of %q: %w", c.name, err)
		}
		backing = c.backing
	}
	if r.Node == c.msgFresh {
		c.msgFresh = 0 // opened: the next lookup makes a new instance
	}
	name := c.name
	s.mu.Unlock()

	var h handle
	var flags fuse.OpenResponseFlags
	switch k {
	case kindMsg:
		h = newMsgHandle(s, c, read, write)
		// Direct I/O: one write(2) is one WRITE, one read(2) one READ.
		// Seekable, so that tools which read ahead and seek back keep
		// working. Writes in parallel (see msgSize), no FLUSH at close:
		// the kernel takes the inode lock for FLUSH.
		flags = fuse.OpenDirectIO | fuse.OpenParallelDirectWrites | fuse.OpenNoFlush
	case kindShm:
		h = &shmHandle{s: s, c: c}
		if backing != 0 {
			// Mappings map the region's memory file itself; reads and
			// writes still come here, so limits hold (see shm.go).
			flags = fuse.OpenPassthrough | fuse.OpenDirectIO
		} else {
			// Cached, so that every mapping shares the page cache; kept across opens.
			flags = fuse.OpenKeepCache
		}
	case kindCtl:
		h = newCtlHandle(s, c)
		flags = fuse.OpenDirectIO | fuse.OpenNoFlush
	case kindStatus:
		if write {
			return fmt.Errorf("open status of %q for writing: %w", name, errReadOnly)
		}
		h = newStatusHandle(s, c)
		flags = fuse.OpenDirectIO | fuse.OpenNoFlush
	default:
		return fmt.Errorf("open node %v: %w", r.Node, errNotPermitted)
	}
	r.Respond(&fuse.OpenResponse{Handle: s.addHandle(h), Flags: flags, BackingID: backing})
	return nil
}
