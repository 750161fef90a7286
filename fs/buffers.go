package fs

import (
	"math/bits"
	"sync"
)

// Buffers for message bodies and shm page-ins, recycled by size class
// (powers of two from 64 B to 1 MiB) so that the hot paths do not make
// garbage at the rate messages flow.
const (
	minBufShift = 6  // 64 B
	maxBufShift = 20 // 1 MiB: the largest WRITE or READ the kernel sends (max_write)
)

var bufPools [maxBufShift - minBufShift + 1]sync.Pool

// bufClass returns the pool index for n bytes, or -1 if n is too large.
func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return 0
	}
	shift := bits.Len(uint(n - 1))
	if shift > maxBufShift {
		return -1
	}
	return shift - minBufShift
}

// getBuf returns a buffer of length n, from a pool when n is not too large.
func getBuf(n int) []byte {
	c := bufClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if p, ok := bufPools[c].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<(c+minBufShift))
}

// putBuf recycles a buffer from getBuf. The caller must not use it after.
func putBuf(b []byte) {
	c := bufClass(cap(b))
	if c < 0 || cap(b) != 1<<(c+minBufShift) {
		return // not one of ours
	}
	b = b[:0]
	bufPools[c].Put(&b)
}
