#!/usr/bin/env python3
"""shm_peer: the Python client of the ipcfs shared-memory tests.

Reads commands from stdin, one a line, and answers each with one line on
stdout, exactly as `shmtool peer` (tests/clients/shmtool.c) does: "ok",
"ok VALUE", "err ERRNAME" (a system call failed) or "bad WHY". The test
drives several peers this way and uses the answers as the handshake between
them.

    open PATH r|rw|rwc     os.open; rwc is O_RDWR|O_CREAT, mode 0o666
    truncate N             os.ftruncate of the open file
    truncpath PATH N       os.truncate of a path
    size                   os.fstat: "ok SIZE"
    map LEN                mmap.mmap(MAP_SHARED, PROT_READ|PROT_WRITE)
    fill OFF LEN SEED      store the pattern through the mapping
    check OFF LEN SEED     compare the mapping with the pattern
    pwrite OFF LEN SEED    os.pwrite the pattern
    pread OFF LEN SEED     os.pread and compare
    read OFF LEN SEED      os.lseek, then os.read and compare
    msync                  mmap.flush (msync MS_SYNC)
    unmap                  mmap.close
    close                  os.close the file (a mapping stays)

The pattern is shmtool's; see pattern().
"""
import errno
import mmap
import os
import sys
from array import array

K = 0x9E3779B97F4A7C15
C = 0xD1B54A32D192ED03
M = (1 << 64) - 1
CHUNK = 1 << 20


def pattern(off, n, seed):
    """Bytes [off, off+n) of seed's pattern: little-endian 64-bit words
    w[i] = (i*K) ^ (seed*C) mod 2**64; seed 0 is all zeros."""
    if seed == 0:
        return bytes(n)
    first, end = off >> 3, (off + n + 7) >> 3
    s = (seed * C) & M
    words = array("Q", (((i * K) & M) ^ s for i in range(first, end)))
    if sys.byteorder != "little":
        words.byteswap()
    skip = off - first * 8
    return words.tobytes()[skip:skip + n]


def difference(got, off, seed):
    """None if got (the bytes at off) is seed's pattern, else why not."""
    want = pattern(off, len(got), seed)
    if got == want:
        return None
    i = next(i for i in range(len(got)) if got[i] != want[i])
    return "bad at %d: got 0x%02x want 0x%02x" % (off + i, got[i], want[i])


class Peer:
    def __init__(self):
        self.fd = -1
        self.map = None

    def do(self, words):
        cmd, args = words[0], words[1:]
        if cmd == "open":
            path, mode = args
            flags = {"r": os.O_RDONLY, "rw": os.O_RDWR, "rwc": os.O_RDWR | os.O_CREAT}[mode]
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            self.fd = os.open(path, flags, 0o666)
            return "ok"
        if cmd == "truncpath":
            os.truncate(args[0], int(args[1]))
            return "ok"
        nums = [int(a) for a in args]
        if cmd in ("truncate", "size", "map", "pwrite", "pread", "read", "close") and self.fd < 0:
            return "bad no open file"
        if cmd == "truncate":
            os.ftruncate(self.fd, nums[0])
            return "ok"
        if cmd == "size":
            return "ok %d" % os.fstat(self.fd).st_size
        if cmd == "map":
            m = mmap.mmap(self.fd, nums[0], flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
            if self.map is not None:
                self.map.close()
            self.map = m
            return "ok"
        if cmd == "close":
            fd, self.fd = self.fd, -1
            os.close(fd)
            return "ok"
        if cmd in ("pwrite", "pread", "read"):
            return self.xfer(cmd, *nums)
        if cmd in ("fill", "check", "msync", "unmap") and self.map is None:
            return "bad no mapping"
        if cmd == "fill":
            off, n, seed = nums
            self.map[off:off + n] = pattern(off, n, seed)
            return "ok"
        if cmd == "check":
            off, n, seed = nums
            for done in range(0, n, CHUNK):
                k = min(CHUNK, n - done)
                why = difference(self.map[off + done:off + done + k], off + done, seed)
                if why:
                    return why
            return "ok"
        if cmd == "msync":
            self.map.flush()
            return "ok"
        if cmd == "unmap":
            self.map.close()
            self.map = None
            return "ok"
        return "bad unknown command " + " ".join(words)

    def xfer(self, how, off, n, seed):
        if how == "read":
            os.lseek(self.fd, off, os.SEEK_SET)
        done = 0
        while done < n:
            k = min(CHUNK, n - done)
            if how == "pwrite":
                r = os.pwrite(self.fd, pattern(off + done, k, seed), off + done)
            else:
                got = os.read(self.fd, k) if how == "read" else os.pread(self.fd, k, off + done)
                r = len(got)
                why = difference(got, off + done, seed)
                if why:
                    return why
            if r == 0:
                return "bad %s: end of file at %d, before %d" % (how, off + done, off + n)
            done += r
        return "ok"


def main():
    peer = Peer()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            reply = peer.do(words)
        except OSError as e:
            reply = "err " + errno.errorcode.get(e.errno, str(e.errno))
        except (ValueError, KeyError, IndexError) as e:
            reply = "bad %s: %s" % (type(e).__name__, e)
        print(reply, flush=True)


if __name__ == "__main__":
    main()
