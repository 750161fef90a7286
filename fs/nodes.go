package fs

import (
	"os"
	"time"

	"bazil.org/fuse"
)

// kind is what a node is. It occupies the low bits of a node ID.
type kind uint8

const (
	kindRoot kind = 1 + iota // so that the root's ID is fuse.RootID
	kindDir
	kindMsg
	kindShm
	kindCtl
	kindStatus
)

const kindBits = 3

// channelEntries is the static table of a channel's files, in listing order.
var channelEntries = [...]struct {
	name string
	kind kind
	perm os.FileMode // the bits of the directory's mode a file keeps
}{
	{"msg", kindMsg, 0o666},
	{"shm", kindShm, 0o666},
	{"ctl", kindCtl, 0o644}, // written by its owner only (limits.go)
	{"status", kindStatus, 0o444},
}

// entryKind returns the kind of a channel's file called name.
func entryKind(name string) (kind, bool) {
	for _, e := range channelEntries {
		if e.name == name {
			return e.kind, true
		}
	}
	return 0, false
}

// msgInstanceBit marks the node ID of a msg instance. Every LOOKUP of a
// channel's msg gets a node of its own (and an entry timeout of 0, so that
// every path walk looks it up again): each open(2) of msg then has a kernel
// inode of its own, and with it an inode lock of its own. The kernel holds
// that lock across a whole direct write(2) — exclusively for some writes,
// and for lseek(SEEK_END), utimes, fsync and truncate — so a writer waiting
// in the daemon for room would otherwise make every other process that
// touches the same msg sleep uninterruptibly behind it. st_ino stays the
// channel's msg node ID, the same for every instance.
const msgInstanceBit = 1 << 63

// msgInstance is one node of a channel's msg (see msgInstanceBit).
type msgInstance struct {
	c       *channel
	lookups uint64 // GUARDED_BY(Server.mu); references the kernel holds to this node
}

func nodeID(serial uint64, k kind) fuse.NodeID {
	return fuse.NodeID(serial<<kindBits | uint64(k))
}

func splitNodeID(id fuse.NodeID) (serial uint64, k kind) {
	return uint64(id) >> kindBits, kind(uint64(id) & (1<<kindBits - 1))
}

// How long the kernel may cache what we tell it. Names change only through
// this mount, so entries may be cached a while; attributes change with
// chmod/chown (we invalidate the files then) and shm's size.
const (
	entryValid = time.Minute
	attrValid  = time.Second
)

// msgSize is the size msg reports: beyond any offset a reader or writer
// reaches. The kernel lets direct writes run in parallel (a shared inode
// lock) only while they do not extend the file, and serves page-cache
// reads (sendfile, splice, readahead, private mappings) below the size
// without asking the daemon: with a size of 0 they would read end of file
// and report success; below a huge size they reach the daemon, which
// refuses them (see Server.read).
const msgSize = 1 << 62

// maxNameLen is the longest channel name; the kernel passes up to 1024.
const maxNameLen = 255
