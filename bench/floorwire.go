package bench

import (
	"encoding/binary"
)

// The FUSE wire format the floor server speaks (include/uapi/linux/fuse.h),
// only the parts it needs. Every structure is native-endian and laid out
// as in the kernel's header.

// Opcodes.
const (
	opLookup      = 1
	opForget      = 2
	opGetattr     = 3
	opSetattr     = 4
	opMkdir       = 9
	opUnlink      = 10
	opRmdir       = 11
	opOpen        = 14
	opRead        = 15
	opWrite       = 16
	opStatfs      = 17
	opRelease     = 18
	opFsync       = 20
	opFlush       = 25
	opInit        = 26
	opOpendir     = 27
	opReaddir     = 28
	opReleasedir  = 29
	opFsyncdir    = 30
	opInterrupt   = 36
	opDestroy     = 38
	opBatchForget = 42
)

// INIT flags and open flags.
const (
	initBigWrites = 1 << 5
	initMaxPages  = 1 << 22

	fopenDirectIO                    = 1 << 0
	fopenNoFlush                     = 1 << 5
	fopenParallelDirectWrites        = 1 << 6
	floorProtoMinor                  = 33 // what ipcfs's FUSE library speaks
	floorMaxWrite                    = 1 << 20
	floorMaxPages                    = 256
	inHeaderSize                     = 40
	outHeaderSize                    = 16
	readInSize                       = 40
	writeInSize                      = 40
	attrSize                         = 88
	entryOutSize                     = 40 + attrSize
	attrOutSize                      = 16 + attrSize
	initOutSize                      = 64
	openOutSize                      = 16
	statfsOutSize                    = 80
	floorReadBuffer                  = floorMaxWrite + 4096 + inHeaderSize + writeInSize
	interruptBit              uint64 = 1 // set in the unique of an INTERRUPT
)

var ne = binary.NativeEndian

// inHeader is fuse_in_header.
type inHeader struct {
	len    uint32
	opcode uint32
	unique uint64
	nodeid uint64
	uid    uint32
	gid    uint32
	pid    uint32
}

func parseInHeader(b []byte) (inHeader, bool) {
	if len(b) < inHeaderSize {
		return inHeader{}, false
	}
	return inHeader{
		len:    ne.Uint32(b[0:]),
		opcode: ne.Uint32(b[4:]),
		unique: ne.Uint64(b[8:]),
		nodeid: ne.Uint64(b[16:]),
		uid:    ne.Uint32(b[24:]),
		gid:    ne.Uint32(b[28:]),
		pid:    ne.Uint32(b[32:]),
	}, true
}

// putOutHeader fills fuse_out_header: the reply's total length, a
// negative errno or 0, and the request's unique.
func putOutHeader(b []byte, length int, errno int32, unique uint64) {
	ne.PutUint32(b[0:], uint32(length))
	ne.PutUint32(b[4:], uint32(errno))
	ne.PutUint64(b[8:], unique)
}

// floorAttr is the part of fuse_attr the floor fills.
type floorAttr struct {
	ino   uint64
	size  uint64
	mode  uint32
	nlink uint32
	uid   uint32
	gid   uint32
}

// put writes fuse_attr (88 bytes).
func (a floorAttr) put(b []byte) {
	clear(b[:attrSize])
	ne.PutUint64(b[0:], a.ino)
	ne.PutUint64(b[8:], a.size)
	// blocks, atime, mtime, ctime, their nanoseconds: 0
	ne.PutUint32(b[60:], a.mode)
	ne.PutUint32(b[64:], a.nlink)
	ne.PutUint32(b[68:], a.uid)
	ne.PutUint32(b[72:], a.gid)
	ne.PutUint32(b[80:], 4096) // blksize
}

// floorValid is how long the kernel may keep names and attributes: the
// floor's tree changes only by mkdir and rmdir, which the kernel sees.
const floorValid = 3600

// putEntryOut writes fuse_entry_out.
func putEntryOut(b []byte, a floorAttr) {
	ne.PutUint64(b[0:], a.ino) // nodeid
	ne.PutUint64(b[8:], 0)     // generation
	ne.PutUint64(b[16:], floorValid)
	ne.PutUint64(b[24:], floorValid)
	ne.PutUint32(b[32:], 0)
	ne.PutUint32(b[36:], 0)
	a.put(b[40:])
}

// putAttrOut writes fuse_attr_out.
func putAttrOut(b []byte, a floorAttr) {
	ne.PutUint64(b[0:], floorValid)
	ne.PutUint32(b[8:], 0)
	ne.PutUint32(b[12:], 0)
	a.put(b[16:])
}

// cString returns the NUL-terminated name at the start of b.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
