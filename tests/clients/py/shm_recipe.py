#!/usr/bin/env python3
"""shm_recipe PATH SIZE CHECKSEED FILLSEED: the POSIX shared-memory recipe
in Python with only the path changed — os.open(O_RDWR|O_CREAT), ftruncate,
mmap, close — then compare the region with CHECKSEED's pattern ("-": don't)
and store FILLSEED's ("-": don't). Prints "ok". The pattern is shmtool's
(see shm_peer.pattern)."""
import mmap
import os
import sys

from shm_peer import difference, pattern


def main():
    path, size, check, fill = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    os.ftruncate(fd, size)
    m = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
    if check != "-":
        why = difference(m[:], 0, int(check))
        if why:
            sys.exit("shm_recipe: " + why)
    if fill != "-":
        m[:] = pattern(0, size, int(fill))
    m.close()
    print("ok")


if __name__ == "__main__":
    main()
