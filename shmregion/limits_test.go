package shmregion

import (
	"errors"
	"testing"
)

// charger is a Charger with a limit, recording what it holds.
type charger struct {
	limit, held int64
}

var errRefused = errors.New("refused")

func (c *charger) Charge(n int64) error {
	if c.held+n > c.limit {
		return errRefused
	}
	c.held += n
	return nil
}

func (c *charger) Release(n int64) { c.held -= n }

// TestCharges runs scripts of size changes against a charger of 3 pages:
// the region is charged its size in whole pages, a refused growth changes
// nothing, and Close gives everything back.
func TestCharges(t *testing.T) {
	const page = PageSize
	type step struct {
		op      string // truncate, write (n bytes at off), close
		off, n  int64
		wantErr error
		size    int64 // Size() after
		held    int64 // the charger's bytes after
		file    bool  // a memory file is open after
	}
	tests := map[string][]step{
		"truncate charges whole pages": {
			{op: "truncate", off: 1, size: 1, held: page, file: true},
			{op: "truncate", off: page, size: page, held: page, file: true},
			{op: "truncate", off: page + 1, size: page + 1, held: 2 * page, file: true},
			{op: "truncate", off: 3 * page, size: 3 * page, held: 3 * page, file: true},
			{op: "truncate", off: 3*page + 1, wantErr: errRefused, size: 3 * page, held: 3 * page, file: true},
			{op: "truncate", off: page, size: page, held: page, file: true},
			{op: "truncate", off: 0, size: 0, held: 0, file: false},
		},
		"a write past the end charges its growth": {
			{op: "write", off: 0, n: 10, size: 10, held: page, file: true},
			{op: "write", off: 2 * page, n: 10, size: 2*page + 10, held: 3 * page, file: true},
			{op: "write", off: 3 * page, n: 1, wantErr: errRefused, size: 2*page + 10, held: 3 * page, file: true},
			{op: "write", off: 0, n: page, size: 2*page + 10, held: 3 * page, file: true}, // inside: nothing new
		},
		"a refused first growth makes no file": {
			{op: "write", off: 4 * page, n: 1, wantErr: errRefused, size: 0, held: 0, file: false},
			{op: "truncate", off: 5 * page, wantErr: errRefused, size: 0, held: 0, file: false},
		},
		"close releases the charge": {
			{op: "truncate", off: 2 * page, size: 2 * page, held: 2 * page, file: true},
			{op: "close", size: 0, held: 0, file: false},
			{op: "close", size: 0, held: 0, file: false},
			{op: "truncate", off: page, wantErr: ErrClosed, size: 0, held: 0, file: false},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			c := &charger{limit: 3 * page}
			r, err := NewWith(Config{Max: 1 << 20, Memory: c})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for i, s := range steps {
				var err error
				switch s.op {
				case "truncate":
					err = r.Truncate(s.off)
				case "write":
					_, err = r.WriteAt(make([]byte, s.n), s.off)
				case "close":
					err = r.Close()
				}
				if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
					t.Fatalf("step %d %s: %v, want %v", i, s.op, err, s.wantErr)
				}
				r.mu.RLock()
				file := r.fd >= 0
				r.mu.RUnlock()
				if r.Size() != s.size || c.held != s.held || r.Charged() != s.held || file != s.file {
					t.Fatalf("step %d %s: size %d charged %d (charger %d) file %v; want %d %d %v",
						i, s.op, r.Size(), r.Charged(), c.held, file, s.size, s.held, s.file)
				}
			}
		})
	}
}

// TestFileLimit checks that regions sharing a FileLimit hold at most its
// number of memory files, only while their size is above 0.
func TestFileLimit(t *testing.T) {
	files := NewFileLimit(2)
	var rs []*Region
	for range 3 {
		r, err := NewWith(Config{Max: 1 << 20, Files: files})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rs = append(rs, r)
	}
	if files.InUse() != 0 {
		t.Fatalf("empty regions hold %d files", files.InUse())
	}
	for i, want := range []error{nil, nil, ErrNoFiles} {
		if err := rs[i].Truncate(100); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Fatalf("region %d: Truncate = %v, want %v", i, err, want)
		}
	}
	if _, err := rs[2].WriteAt([]byte("x"), 0); !errors.Is(err, ErrNoFiles) {
		t.Fatalf("write growing a region with no file left: %v", err)
	}
	if rs[2].Size() != 0 {
		t.Fatalf("a failed growth changed the size to %d", rs[2].Size())
	}
	if files.InUse() != 2 {
		t.Fatalf("%d files in use, want 2", files.InUse())
	}
	// Shrinking to 0 gives the file back; so does Close.
	if err := rs[0].Truncate(0); err != nil {
		t.Fatal(err)
	}
	if err := rs[2].Truncate(100); err != nil {
		t.Fatalf("after a region shrank to 0: %v", err)
	}
	rs[1].Close()
	if files.InUse() != 1 {
		t.Fatalf("%d files in use, want 1", files.InUse())
	}
	// Bytes survive the round trip through reads while a file is held.
	if _, err := rs[2].WriteAt([]byte("kept"), 10); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if n, err := rs[2].ReadAt(buf, 10); err != nil || string(buf[:n]) != "kept" {
		t.Fatalf("read back %q, %v", buf[:n], err)
	}
}

// TestNoFileUntilUsed checks that a new region, and one shrunk to 0,
// holds no file descriptor and still answers reads.
func TestNoFileUntilUsed(t *testing.T) {
	r := newRegion(t, 1<<20)
	if r.fd >= 0 {
		t.Fatal("a new region holds a memory file")
	}
	if n, err := r.ReadAt(make([]byte, 10), 0); n != 0 || err != nil {
		t.Fatalf("ReadAt on an empty region: %d, %v", n, err)
	}
	if a, err := r.Allocated(); a != 0 || err != nil {
		t.Fatalf("Allocated: %d, %v", a, err)
	}
	r.Truncate(10)
	r.Truncate(0)
	if r.fd >= 0 {
		t.Fatal("a region shrunk to 0 keeps its memory file")
	}
	if _, err := r.WriteAt([]byte("again"), 0); err != nil {
		t.Fatal(err)
	}
	if r.Size() != 5 {
		t.Fatalf("size %d", r.Size())
	}
}
