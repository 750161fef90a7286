package fs

import (
	"bazil.org/fuse"
)

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
