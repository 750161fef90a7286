package shmregion

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newRegion(t *testing.T, max int64) *Region {
	t.Helper()
	r, err := New(max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// fileSize is the memfd's size as the kernel sees it.
func fileSize(t *testing.T, r *Region) int64 {
	t.Helper()
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.fd < 0 {
		return 0 // no memory file: size 0
	}
	var st unix.Stat_t
	if err := unix.Fstat(r.fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size
}

// op is one step of a scripted test; the model is a plain byte slice.
type op struct {
	kind    string // "truncate", "write", "read"
	off     int64  // offset, or the size for truncate
	data    string // written, or expected from a read
	n       int    // read buffer size
	wantErr error
}

func TestScripts(t *testing.T) {
	tests := []struct {
		name string
		max  int64
		ops  []op
	}{
		{"empty", 100, []op{
			{kind: "read", off: 0, n: 10, data: ""},
			{kind: "read", off: 1000, n: 10, data: ""},
		}},
		{"grow zero-fills", 100, []op{
			{kind: "truncate", off: 8},
			{kind: "read", off: 0, n: 100, data: "\x00\x00\x00\x00\x00\x00\x00\x00"},
		}},
		{"write read back", 100, []op{
			{kind: "write", off: 0, data: "hello"},
			{kind: "read", off: 0, n: 5, data: "hello"},
			{kind: "read", off: 1, n: 2, data: "el"},
			{kind: "read", off: 3, n: 100, data: "lo"},
			{kind: "read", off: 5, n: 100, data: ""},
			{kind: "read", off: 6, n: 100, data: ""},
		}},
		{"write past end grows with zero gap", 100, []op{
			{kind: "write", off: 0, data: "ab"},
			{kind: "write", off: 5, data: "cd"},
			{kind: "read", off: 0, n: 100, data: "ab\x00\x00\x00cd"},
		}},
		{"overwrite inside", 100, []op{
			{kind: "write", off: 0, data: "abcdef"},
			{kind: "write", off: 2, data: "XY"},
			{kind: "read", off: 0, n: 100, data: "abXYef"},
		}},
		{"write straddling end", 100, []op{
			{kind: "write", off: 0, data: "abcd"},
			{kind: "write", off: 2, data: "XYZW"},
			{kind: "read", off: 0, n: 100, data: "abXYZW"},
		}},
		{"shrink discards, regrow zero-fills", 100, []op{
			{kind: "write", off: 0, data: "abcdef"},
			{kind: "truncate", off: 2},
			{kind: "read", off: 0, n: 100, data: "ab"},
			{kind: "truncate", off: 5},
			{kind: "read", off: 0, n: 100, data: "ab\x00\x00\x00"},
			{kind: "truncate", off: 0},
			{kind: "read", off: 0, n: 100, data: ""},
		}},
		{"empty write does not grow", 100, []op{
			{kind: "write", off: 50, data: ""},
			{kind: "read", off: 0, n: 100, data: ""},
		}},
		{"write up to max", 4, []op{
			{kind: "write", off: 0, data: "abcd"},
			{kind: "truncate", off: 4},
			{kind: "read", off: 0, n: 100, data: "abcd"},
		}},
		{"write beyond max changes nothing", 4, []op{
			{kind: "write", off: 0, data: "ab"},
			{kind: "write", off: 1, data: "XYZW", wantErr: ErrTooLarge},
			{kind: "write", off: 5, data: "", wantErr: ErrTooLarge},
			{kind: "write", off: math.MaxInt64, data: "x", wantErr: ErrTooLarge},
			{kind: "read", off: 0, n: 100, data: "ab"},
		}},
		{"truncate beyond max changes nothing", 4, []op{
			{kind: "write", off: 0, data: "ab"},
			{kind: "truncate", off: 5, wantErr: ErrTooLarge},
			{kind: "truncate", off: math.MaxInt64, wantErr: ErrTooLarge},
			{kind: "read", off: 0, n: 100, data: "ab"},
		}},
		{"max 0", 0, []op{
			{kind: "truncate", off: 0},
			{kind: "write", off: 0, data: "", wantErr: nil},
			{kind: "write", off: 0, data: "a", wantErr: ErrTooLarge},
			{kind: "truncate", off: 1, wantErr: ErrTooLarge},
		}},
		{"negative", 100, []op{
			{kind: "write", off: 0, data: "ab"},
			{kind: "truncate", off: -1, wantErr: ErrNegative},
			{kind: "write", off: -1, data: "x", wantErr: ErrNegative},
			{kind: "write", off: math.MinInt64, data: "x", wantErr: ErrNegative},
			{kind: "read", off: -1, n: 1, wantErr: ErrNegative},
			{kind: "read", off: 0, n: 100, data: "ab"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegion(t, tt.max)
			if r.Max() != tt.max {
				t.Fatalf("Max() = %d; want %d", r.Max(), tt.max)
			}
			var model []byte
			for i, o := range tt.ops {
				var err error
				switch o.kind {
				case "truncate":
					err = r.Truncate(o.off)
					if err == nil {
						model = resize(model, o.off)
					}
				case "write":
					var n int
					n, err = r.WriteAt([]byte(o.data), o.off)
					if err == nil {
						if n != len(o.data) {
							t.Fatalf("op %d: WriteAt returned %d; want %d", i, n, len(o.data))
						}
						if len(o.data) > 0 {
							model = resize(model, max(int64(len(model)), o.off+int64(len(o.data))))
							copy(model[o.off:], o.data)
						}
					} else if n != 0 {
						t.Fatalf("op %d: failed WriteAt returned %d", i, n)
					}
				case "read":
					p := bytes.Repeat([]byte{0xEE}, o.n)
					var n int
					n, err = r.ReadAt(p, o.off)
					if err == nil && string(p[:n]) != o.data {
						t.Fatalf("op %d: ReadAt(%d, %d) = %q; want %q", i, o.n, o.off, p[:n], o.data)
					}
				}
				if !errors.Is(err, o.wantErr) {
					t.Fatalf("op %d (%s %d): error %v; want %v", i, o.kind, o.off, err, o.wantErr)
				}
				if got := r.Size(); got != int64(len(model)) {
					t.Fatalf("op %d: Size() = %d; want %d", i, got, len(model))
				}
				if got := fileSize(t, r); got != int64(len(model)) {
					t.Fatalf("op %d: memfd size %d; want %d", i, got, len(model))
				}
			}
		})
	}
}

func resize(b []byte, n int64) []byte {
	if n <= int64(len(b)) {
		return b[:n]
	}
	return append(b, make([]byte, n-int64(len(b)))...)
}

// TestRandomOps checks many random operations against a byte-slice model.
func TestRandomOps(t *testing.T) {
	const limit = 64 << 10
	r := newRegion(t, limit)
	rng := rand.New(rand.NewPCG(1, 2))
	var model []byte
	offset := func() int64 {
		// Mostly near the current size, sometimes anywhere up to past max.
		if rng.IntN(4) == 0 {
			return rng.Int64N(limit + 100)
		}
		return max(0, int64(len(model))+rng.Int64N(512)-256)
	}
	for i := range 5000 {
		switch rng.IntN(3) {
		case 0:
			size := offset()
			err := r.Truncate(size)
			if size > limit {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("op %d: Truncate(%d) = %v; want ErrTooLarge", i, size, err)
				}
				break
			}
			if err != nil {
				t.Fatalf("op %d: Truncate(%d): %v", i, size, err)
			}
			model = resize(model, size)
		case 1:
			off := offset()
			p := make([]byte, rng.IntN(300))
			for j := range p {
				p[j] = byte(rng.IntN(255) + 1)
			}
			n, err := r.WriteAt(p, off)
			if off+int64(len(p)) > limit {
				if !errors.Is(err, ErrTooLarge) || n != 0 {
					t.Fatalf("op %d: WriteAt(%d bytes, %d) = %d, %v; want ErrTooLarge", i, len(p), off, n, err)
				}
				break
			}
			if err != nil || n != len(p) {
				t.Fatalf("op %d: WriteAt(%d bytes, %d) = %d, %v", i, len(p), off, n, err)
			}
			if len(p) > 0 {
				model = resize(model, max(int64(len(model)), off+int64(len(p))))
				copy(model[off:], p)
			}
		case 2:
			off := offset()
			p := make([]byte, rng.IntN(600))
			n, err := r.ReadAt(p, off)
			if err != nil {
				t.Fatalf("op %d: ReadAt(%d, %d): %v", i, len(p), off, err)
			}
			var want []byte
			if off < int64(len(model)) {
				want = model[off:min(int64(len(model)), off+int64(len(p)))]
			}
			if !bytes.Equal(p[:n], want) {
				t.Fatalf("op %d: ReadAt(%d, %d) = %d bytes, differs from model (%d bytes)", i, len(p), off, n, len(want))
			}
		}
		if r.Size() != int64(len(model)) {
			t.Fatalf("op %d: Size() = %d; model %d", i, r.Size(), len(model))
		}
	}
}

func TestNewNegative(t *testing.T) {
	if r, err := New(-1); !errors.Is(err, ErrNegative) || r != nil {
		t.Errorf("New(-1) = %v, %v; want nil, ErrNegative", r, err)
	}
}

func TestClosed(t *testing.T) {
	r, err := New(100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteAt([]byte("abc"), 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := r.Size(); got != 0 {
		t.Errorf("Size() after Close = %d; want 0", got)
	}
	if got := r.Max(); got != 100 {
		t.Errorf("Max() after Close = %d; want 100", got)
	}
	checks := map[string]error{}
	_, checks["ReadAt"] = r.ReadAt(make([]byte, 1), 0)
	_, checks["WriteAt"] = r.WriteAt([]byte("x"), 0)
	_, checks["WriteAt grow"] = r.WriteAt([]byte("x"), 50)
	_, checks["WriteAt empty"] = r.WriteAt(nil, 0)
	checks["Truncate"] = r.Truncate(10)
	_, checks["Allocated"] = r.Allocated()
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v; want ErrClosed", name, err)
		}
	}
	// Argument errors take precedence: they are the caller's mistake
	// whatever the state.
	if err := r.Truncate(-1); !errors.Is(err, ErrNegative) {
		t.Errorf("Truncate(-1) after Close: %v; want ErrNegative", err)
	}
}

func TestErrorText(t *testing.T) {
	r := newRegion(t, 4096)
	err := r.Truncate(8192)
	if got, want := err.Error(), "shmregion: truncate to 8192, limit 4096: shmregion: beyond the size limit"; got != want {
		t.Errorf("error text %q; want %q", got, want)
	}
}

// TestConcurrent runs readers, in-bounds writers, growing writers and
// truncates at once; run it with -race. Each writer owns a stripe and
// writes only its own byte value, so every byte read must be 0 (never
// written, or cut off and regrown) or its stripe's value.
func TestConcurrent(t *testing.T) {
	const (
		stripe  = 4096
		writers = 4
		max     = stripe * writers
		rounds  = 2000
	)
	r := newRegion(t, max)
	var wg sync.WaitGroup
	errc := make(chan error, 100)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 0))
			buf := bytes.Repeat([]byte{byte(w + 1)}, stripe)
			for range rounds {
				lo := rng.IntN(stripe)
				hi := lo + rng.IntN(stripe-lo) + 1
				if _, err := r.WriteAt(buf[lo:hi], int64(w*stripe+lo)); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, max)
			for i := range rounds {
				off := int64(i*997) % max
				n, err := r.ReadAt(buf[:rand.IntN(max)+1], off)
				if err != nil {
					fail(err)
					return
				}
				for j, b := range buf[:n] {
					pos := off + int64(j)
					if b != 0 && b != byte(pos/stripe+1) {
						fail(errors.New("read a byte no writer wrote there"))
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for i := range rounds / 4 {
			if err := r.Truncate(int64(i*4099) % (max + 1)); err != nil {
				fail(err)
				return
			}
			_ = r.Size()
			if _, err := r.Allocated(); err != nil {
				fail(err)
				return
			}
		}
	})
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if got := fileSize(t, r); got != r.Size() {
		t.Errorf("memfd size %d, Size() %d", got, r.Size())
	}
}

// TestCloseWhileBusy closes the region while others use it: every call
// either succeeds or fails with ErrClosed.
func TestCloseWhileBusy(t *testing.T) {
	r, err := New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ops atomic.Int64
	for i := range 4 {
		wg.Go(func() {
			buf := make([]byte, 4096)
			for j := 0; ; j++ {
				var err error
				switch (i + j) % 3 {
				case 0:
					_, err = r.WriteAt(buf, int64(j%256)*4096)
				case 1:
					_, err = r.ReadAt(buf, int64(j%256)*4096)
				case 2:
					err = r.Truncate(int64(j%256) * 4096)
				}
				ops.Add(1)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for ops.Load() < 1000 {
		runtime.Gosched()
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	wg.Wait()
}

// TestLarge writes a 256 MiB region and reads it back.
func TestLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping 256 MiB region in -short mode")
	}
	const (
		size  = 256 << 20
		chunk = 1 << 20
	)
	r := newRegion(t, 1<<30)
	base := make([]byte, chunk)
	rand.NewChaCha8([32]byte{3}).Read(base)
	buf := make([]byte, chunk)
	fill := func(i int) { // base, stamped with the chunk number at both ends
		copy(buf, base)
		binary.LittleEndian.PutUint64(buf, uint64(i))
		binary.LittleEndian.PutUint64(buf[chunk-8:], uint64(i))
	}
	for i := range size / chunk {
		fill(i)
		if n, err := r.WriteAt(buf, int64(i)*chunk); err != nil || n != chunk {
			t.Fatalf("WriteAt chunk %d: %d, %v", i, n, err)
		}
	}
	if r.Size() != size {
		t.Fatalf("Size() = %d; want %d", r.Size(), size)
	}
	if a, err := r.Allocated(); err != nil || a < size {
		t.Errorf("Allocated() = %d, %v; want ≥ %d after writing every byte", a, err, size)
	}
	got := make([]byte, chunk)
	for i := range size / chunk {
		fill(i)
		if n, err := r.ReadAt(got, int64(i)*chunk); err != nil || n != chunk {
			t.Fatalf("ReadAt chunk %d: %d, %v", i, n, err)
		}
		if !bytes.Equal(got, buf) {
			t.Fatalf("chunk %d differs", i)
		}
	}
	// One read spanning everything.
	all := make([]byte, size+100)
	if n, err := r.ReadAt(all, 0); err != nil || n != size {
		t.Fatalf("ReadAt(all) = %d, %v; want %d", n, err, size)
	}
	fill(size/chunk - 1)
	if !bytes.Equal(all[size-chunk:size], buf) {
		t.Errorf("last chunk differs in the whole read")
	}
	if err := r.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if a, err := r.Allocated(); err != nil || a != 0 {
		t.Errorf("Allocated() after Truncate(0) = %d, %v; want 0", a, err)
	}
}

// TestSparse checks that untouched pages cost no memory.
func TestSparse(t *testing.T) {
	r := newRegion(t, 1<<30)
	if err := r.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	a, err := r.Allocated()
	if err != nil {
		t.Fatal(err)
	}
	if a > 1<<20 {
		t.Errorf("Allocated() = %d after Truncate(1 GiB) with nothing written; want ~0", a)
	}
	// Reading zeros does not allocate either.
	buf := make([]byte, 1<<20)
	if n, err := r.ReadAt(buf, 512<<20); err != nil || n != len(buf) {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	if !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Errorf("untouched bytes are not zero")
	}
	if _, err := r.WriteAt([]byte("x"), 700<<20); err != nil {
		t.Fatal(err)
	}
	if a, err = r.Allocated(); err != nil || a > 1<<20 {
		t.Errorf("Allocated() = %d, %v after one byte written; want about a page", a, err)
	}
	if a == 0 {
		t.Errorf("Allocated() = 0 after a write; want a page")
	}
}

// TestDropWithoutClose checks the safety net: a Region that becomes
// unreachable without Close still gives its memory file back.
func TestDropWithoutClose(t *testing.T) {
	r, err := New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Truncate(4096); err != nil { // the memory file exists from the first growth
		t.Fatal(err)
	}
	link := fmt.Sprintf("/proc/self/fd/%d", r.fd)
	if target, err := os.Readlink(link); err != nil || !strings.HasPrefix(target, "/memfd:ipcfs-shm") {
		t.Fatalf("readlink %s = %q, %v; want a memfd", link, target, err)
	}
	r = nil
	for range 50 {
		runtime.GC()
		time.Sleep(time.Millisecond)
		if target, err := os.Readlink(link); err != nil || !strings.HasPrefix(target, "/memfd:ipcfs-shm") {
			return // closed
		}
	}
	t.Errorf("memfd still open after the Region became unreachable")
}

func TestPinKeepsOneFileThroughSizeZero(t *testing.T) {
	r, err := New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fd, err := r.Pin() // size 0: the file is made for the pin
	if err != nil || fd < 0 {
		t.Fatalf("Pin of an empty region = %d, %v", fd, err)
	}
	for _, size := range []int64{4096, 0, 8192} {
		if err := r.Truncate(size); err != nil {
			t.Fatal(err)
		}
		again, err := r.Pin()
		if err != nil || again != fd {
			t.Fatalf("after truncate to %d: Pin = %d, %v; want the same file %d", size, again, err, fd)
		}
		r.Unpin()
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Size != size {
			t.Fatalf("the pinned file after truncate to %d: size %d, %v", size, st.Size, err)
		}
	}
	if _, err := r.WriteAt([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := unix.Pread(fd, buf, 0); err != nil || buf[0] != 'x' {
		t.Fatalf("a write through the region is not in the pinned file: %q, %v", buf, err)
	}
	if err := r.Truncate(0); err != nil {
		t.Fatal(err)
	}
	r.Unpin() // the last pin of an empty region: the file goes
	if n, _ := r.Allocated(); n != 0 {
		t.Errorf("allocated %d after the last Unpin of an empty region", n)
	}
	if fd2, err := r.Pin(); err != nil || fd2 < 0 {
		t.Errorf("Pin after the file went: %d, %v; want a new file", fd2, err)
	} else {
		r.Unpin()
	}
	r.Close()
	if _, err := r.Pin(); !errors.Is(err, ErrClosed) {
		t.Errorf("Pin after Close: %v, want ErrClosed", err)
	}
}
