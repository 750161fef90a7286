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

// maxNameLen is the longest channel name; the kernel passes up to 1024.
const maxNameLen = 255
