package fs

import (
	"sync"

	"bazil.org/fuse"
)

// dirHandle is an open directory: the root or a channel. Its listing is a
// snapshot taken when reading starts (offset 0), so a listing in progress
// is consistent.
type dirHandle struct {
	s    *Server
	node fuse.NodeID

	mu      sync.Mutex // guards listing
	listing []byte     // GUARDED_BY(mu)
}

var _ reader = (*dirHandle)(nil)

func (d *dirHandle) readAt(off int64, size int) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off == 0 || d.listing == nil {
		d.listing = d.s.listing(d.node)
	}
	return window(d.listing, off, size), nil
}

func (d *dirHandle) release() {}

// listing encodes the entries of a directory node.
func (s *Server) listing(node fuse.NodeID) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var ents []fuse.Dirent
	if node == fuse.RootID {
		ents = s.rootListing()
	} else if c, k, err := s.channelOf(node); err == nil && k == kindDir && !c.removed.Load() {
		ents = append(ents,
			fuse.Dirent{Inode: uint64(nodeID(c.serial, kindDir)), Type: fuse.DT_Dir, Name: "."},
			fuse.Dirent{Inode: uint64(fuse.RootID), Type: fuse.DT_Dir, Name: ".."})
		for _, e := range channelEntries {
			ents = append(ents, fuse.Dirent{Inode: uint64(nodeID(c.serial, e.kind)), Type: fuse.DT_File, Name: e.name})
		}
	}
	var buf []byte
	for _, e := range ents {
		buf = fuse.AppendDirent(buf, e)
	}
	return buf
}

// window returns up to size bytes of data from off.
func window(data []byte, off int64, size int) []byte {
	if off < 0 || off >= int64(len(data)) {
		return nil
	}
	data = data[off:]
	return data[:min(len(data), size)]
}
