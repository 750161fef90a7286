package fs

import (
	"os"
	"sync/atomic"
	"time"

	"bazil.org/fuse"

	"github.com/ipcfs/ipcfs/channels"
	"github.com/ipcfs/ipcfs/natschan"
	"github.com/ipcfs/ipcfs/shmregion"
)

// channel is one directory of the root and the state behind its files.
type channel struct {
	serial  uint64
	queue   channels.Queue
	shm     *shmregion.Region
	acct    *channels.Account // the channel's share of the mount's budget (limits.go)
	created time.Time
	removed atomic.Bool // set (under Server.mu) by rmdir; read anywhere

	// What msg's size and mtime report (see msgSize): bytes of every
	// message sent through this mount's msg files, and when the last was.
	sentBytes atomic.Int64
	lastSent  atomic.Int64 // UnixNano; 0 before the first

	// Guarded by Server.mu.
	name     string      // GUARDED_BY(Server.mu)
	uid, gid uint32      // GUARDED_BY(Server.mu)
	perm     os.FileMode // GUARDED_BY(Server.mu)
	changed  time.Time   // GUARDED_BY(Server.mu); ctime: last chmod/chown
	lookups  uint64      // GUARDED_BY(Server.mu); references the kernel holds to this channel's nodes
	shmOpen  int         // GUARDED_BY(Server.mu); open handles of shm
	shmFreed bool        // GUARDED_BY(Server.mu); the region was closed
	backing  int32       // GUARDED_BY(Server.mu); the region's FUSE backing file ID while shm is open in passthrough, else 0
	msgFresh fuse.NodeID // GUARDED_BY(Server.mu); msg instance not yet opened, 0 if none
}

// shared returns the channel's queue if it lives in NATS (nats.go), nil
// for a local channel.
func (c *channel) shared() *natschan.Queue {
	q, _ := c.queue.(*natschan.Queue)
	return q
}

// attr returns the attributes of the channel's node of kind k. Requires
// Server.mu (read).
func (c *channel) attr(k kind) fuse.Attr {
	a := fuse.Attr{
		Valid:     attrValid,
		Inode:     uint64(nodeID(c.serial, k)),
		Nlink:     1,
		Uid:       c.uid,
		Gid:       c.gid,
		Atime:     c.created,
		Mtime:     c.created,
		Ctime:     c.changed,
		BlockSize: 4096,
	}
	if k == kindDir {
		a.Mode = os.ModeDir | c.perm
		a.Nlink = 2
		return a
	}
	for _, e := range channelEntries {
		if e.kind == k {
			a.Mode = c.perm & e.perm
		}
	}
	switch k {
	case kindMsg:
		// Grows like a log file's as messages are sent, so that tail -f
		// (which polls the size and mtime) reads when one is.
		a.Size = msgSize + uint64(c.sentBytes.Load())
		if q := c.shared(); q != nil {
			a.Size += q.SentSeen() // other hosts' messages too
		}
		if t := c.lastSent.Load(); t != 0 {
			a.Mtime = time.Unix(0, t)
		}
	case kindShm:
		if !c.shmFreed {
			a.Size = uint64(c.shm.Size())
			a.Blocks = (a.Size + 511) / 512
		}
	case kindCtl, kindStatus:
		// Their content's length now, so that page-cache reads (sendfile)
		// reach the daemon (which refuses them) instead of reading end of
		// file, and tools that read the tail of a file (tail, wc -c) work.
		if text, err := generatedText(c, k); err == nil {
			a.Size = uint64(len(text))
		}
	}
	return a
}

// channelOf returns the channel a node belongs to, live or removed, as
// long as the kernel knows it. Requires Server.mu (read).
func (s *Server) channelOf(id fuse.NodeID) (*channel, kind, error) {
	if id&msgInstanceBit != 0 {
		m, ok := s.msgNodes[id]
		if !ok {
			return nil, 0, errNoEntry
		}
		return m.c, kindMsg, nil
	}
	serial, k := splitNodeID(id)
	c, ok := s.channels[serial]
	if !ok || k < kindDir || k > kindStatus {
		return nil, 0, errNoEntry
	}
	return c, k, nil
}

// nameOf returns a channel's current name, for log lines.
func (s *Server) nameOf(c *channel) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return c.name
}
