package tests

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// shmTests is the conformance map of the spec's shm section (and of the
// tree rule on rmdir of a channel whose shm is mapped). Each test gets its
// own daemon, mounted with shmMountFlags[name]. The test process never maps
// the mount: every mapping is made by a client process — shmtool (C),
// shm_peer.py (Python), shmclient (Go) — that the test drives line by line
// through its stdin and stdout. An answer from one client is the handshake
// that lets the test send the next command to another; nothing sleeps.
var shmTests = map[string]func(t *testing.T, d *daemon){
	"size: a new region is empty":                               testShmNewEmpty,
	"size: truncate, ftruncate and os.truncate set it":          testShmTruncateTools,
	"size: growing zero-fills, shrinking discards the tail":     testShmGrowShrink,
	"size: a write past the end grows the region":               testShmWriteGrows,
	"size: beyond --shm-max is EFBIG":                           testShmMax,
	"size: negative and absurd sizes":                           testShmBadSizes,
	"mmap: C and C share stores without msync":                  shmSharing("C", "C"),
	"mmap: Python and C share stores without msync":             shmSharing("Python", "C"),
	"mmap: Go and C share stores without msync":                 shmSharing("Go", "C"),
	"mmap: C, Python and Go at once":                            testShmThreeMappers,
	"read/write/pread/pwrite agree with mappings":               testShmIOAgrees,
	"persistence: the bytes outlive every opener and the cache": testShmPersistence,
	"persistence: msync(MS_SYNC) hands the daemon the data":     testShmMsync,
	"POSIX recipe: open, ftruncate, mmap in C, Python and Go":   testShmRecipe,
	"rmdir while mapped: C keeps its region":                    shmRmdirMapped("C"),
	"rmdir while mapped: Python keeps its region":               shmRmdirMapped("Python"),
	"rmdir while mapped: Go keeps its region":                   shmRmdirMapped("Go"),
	"large region: 256 MiB through mappings and read(2)":        testShmLarge,
}

// shmMountFlags are the extra mount flags of the tests that need them.
var shmMountFlags = map[string][]string{
	"size: beyond --shm-max is EFBIG": {"--shm-max", "8M"},
}

// TestShm runs the suite on both of shm's paths: FUSE passthrough (the
// kernel maps the region's memory file itself; the default, as root on
// Linux 6.9+) and the page cache (--passthrough=false, and wherever the
// kernel declines passthrough).
func TestShm(t *testing.T) {
	for _, path := range []struct{ name, flag, want string }{
		{"passthrough", "--passthrough=true", "passthrough"},
		{"page cache", "--passthrough=false", "page cache"},
	} {
		t.Run(path.name, func(t *testing.T) {
			t.Parallel()
			for name, test := range shmTests {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					d := mount(t, append([]string{path.flag}, shmMountFlags[name]...)...)
					if got := d.shmPath(); got != path.want {
						t.Skipf("shm is served by the %v here, not by the %s (passthrough needs Linux 6.9+ and CAP_SYS_ADMIN)", got, path.want)
					}
					test(t, d)
				})
			}
		})
	}
}

const (
	shmKiB = 1 << 10
	shmMiB = 1 << 20
)

func testShmNewEmpty(t *testing.T, d *daemon) {
	ch := d.channel("new")
	wantShmSize(t, ch, 0)
	if out := sh(t, map[string]string{"SHM": filepath.Join(ch, "shm")}, `wc -c < "$SHM"`); strings.TrimSpace(out) != "0" {
		t.Errorf("wc -c of a new shm: %q, want 0", out)
	}
	p := startShmPeer(t, "C")
	p.ok("open %s rw", filepath.Join(ch, "shm"))
	if got := p.ok("size"); got != "0" {
		t.Errorf("fstat of a new shm: size %s, want 0", got)
	}
	p.finish()
}

func testShmTruncateTools(t *testing.T, d *daemon) {
	ch := d.channel("trunc")
	shm := filepath.Join(ch, "shm")
	sh(t, map[string]string{"SHM": shm}, `truncate -s 4M "$SHM"`)
	wantShmSize(t, ch, 4*shmMiB)

	for i, lang := range shmLangs(t) {
		p := startShmPeer(t, lang)
		// truncate(2) of the path: os.truncate, os.Truncate, truncate().
		byPath := int64(5+2*i) * shmMiB
		p.ok("truncpath %s %d", shm, byPath)
		wantShmSize(t, ch, byPath)
		// ftruncate(2) of an open file, which fstat then shows.
		byFD := int64(1+2*i)*shmMiB + 12345
		p.ok("open %s rw", shm)
		p.ok("truncate %d", byFD)
		if got := p.ok("size"); got != strconv.FormatInt(byFD, 10) {
			t.Errorf("%s: fstat after ftruncate to %d: %s", lang, byFD, got)
		}
		wantShmSize(t, ch, byFD)
		p.finish()
	}
}

func testShmGrowShrink(t *testing.T, d *daemon) {
	ch := d.channel("gs")
	shm := filepath.Join(ch, "shm")
	const size, cut = 1 * shmMiB, 100000 // the cut is inside a page
	p := startShmPeer(t, "C")
	p.ok("open %s rw", shm)
	p.ok("truncate %d", size)
	p.ok("pread 0 %d 0", size) // growing from 0 reads back zeros
	p.ok("map %d", size)
	p.ok("check 0 %d 0", size)
	p.ok("fill 0 %d 5", size)
	p.ok("unmap")

	p.ok("truncate %d", cut)
	wantShmSize(t, ch, cut)
	p.ok("pread 0 %d 5", cut)
	if got := p.do("read %d 20 5", cut-10); got != fmt.Sprintf("bad read: end of file at %d, before %d", cut, cut+10) {
		t.Errorf("read across the new end: %q, want end of file at %d", got, cut)
	}
	p.ok("truncate %d", size)
	wantShmSize(t, ch, size)
	p.ok("pread 0 %d 5", cut)
	p.ok("pread %d %d 0", cut, size-cut) // the discarded tail grows back as zeros
	p.finish()

	// Another process, through its own mapping, sees the same.
	q := startShmPeer(t, "Python")
	q.ok("open %s rw", shm)
	q.ok("map %d", size)
	q.ok("check 0 %d 5", cut)
	q.ok("check %d %d 0", cut, size-cut)
	q.finish()

	// And so does the daemon's copy, once the kernel's is dropped.
	if dropCaches(t) {
		r := startShmPeer(t, "Go")
		r.ok("open %s rw", shm)
		r.ok("pread 0 %d 5", cut)
		r.ok("pread %d %d 0", cut, size-cut)
		r.finish()
	}

	// Shrinking to 0 and growing with the shell.
	env := map[string]string{"SHM": shm}
	sh(t, env, `truncate -s 0 "$SHM" && truncate -s 8K "$SHM" && cmp -n 8192 "$SHM" /dev/zero`)
	wantShmSize(t, ch, 8*shmKiB)
}

func testShmWriteGrows(t *testing.T, d *daemon) {
	ch := d.channel("wg")
	shm := filepath.Join(ch, "shm")
	const off = shmMiB + 3
	p := startShmPeer(t, "C")
	p.ok("open %s rw", shm)
	p.ok("pwrite %d 10 9", off)
	if got := p.ok("size"); got != strconv.Itoa(off+10) {
		t.Errorf("after pwrite of 10 bytes at %d to an empty shm: size %s, want %d", off, got, off+10)
	}
	wantShmSize(t, ch, off+10)
	p.ok("pread 0 %d 0", off) // the gap reads as zeros
	p.ok("pread %d 10 9", off)
	p.finish()

	q := startShmPeer(t, "Python")
	q.ok("open %s rw", shm)
	q.ok("pwrite %d 4 3", 3*shmMiB)
	wantShmSize(t, ch, 3*shmMiB+4)
	q.ok("pread %d %d 0", off+10, 3*shmMiB-(off+10))
	q.finish()

	env := map[string]string{"SHM": shm}
	if out := sh(t, env, `printf hello >> "$SHM" && tail -c 5 "$SHM"`); out != "hello" {
		t.Errorf("appending with the shell: tail shows %q", out)
	}
	wantShmSize(t, ch, 3*shmMiB+4+5)
	// ">" truncates to 0 first, as on any file.
	if out := sh(t, env, `echo hi > "$SHM" && cat "$SHM"`); out != "hi\n" {
		t.Errorf("echo hi > shm; cat shm: %q", out)
	}
	wantShmSize(t, ch, 3)
}

func testShmMax(t *testing.T, d *daemon) { // mounted with --shm-max 8M
	ch := d.channel("max")
	shm := filepath.Join(ch, "shm")
	const limit = 8 * shmMiB
	sh(t, map[string]string{"SHM": shm}, `truncate -s 8M "$SHM"`)
	wantShmSize(t, ch, limit)
	_, errOut, err := runErr("truncate", "-s", strconv.Itoa(limit+1), shm)
	if err == nil || !strings.Contains(errOut, "File too large") {
		t.Errorf("truncate -s %d: %v %q, want EFBIG (File too large)", limit+1, err, errOut)
	}

	p := startShmPeer(t, "C")
	p.ok("open %s rw", shm)
	p.wantErr("EFBIG", "truncate %d", limit+1)
	p.wantErr("EFBIG", "truncate %d", 2*limit)
	p.wantErr("EFBIG", "pwrite %d 1 3", limit)   // starts at the limit
	p.wantErr("EFBIG", "pwrite %d 1 3", 3*limit) // far beyond
	// Whole pages across the limit: the kernel sends one WRITE, which fails.
	p.wantErr("EFBIG", "pwrite %d 8192 3", limit-4096)
	wantShmSize(t, ch, limit)
	p.ok("pread %d 4096 0", limit-4096) // nothing was written
	// A write that ends past the limit at an odd offset may be cut by the
	// kernel where its buffer crosses an uncached page: then the bytes
	// below the limit are written (a short write) and the rest fails.
	p.wantErr("EFBIG", "pwrite %d 16 3", limit-8)
	if p.do("pread %d 8 3", limit-8) == "ok" {
		t.Logf("pwrite of 16 bytes across the limit: the 8 below it were written (a short write), the rest EFBIG")
	} else {
		p.ok("pread %d 8 0", limit-8)
		t.Logf("pwrite of 16 bytes across the limit: nothing written, EFBIG")
	}
	p.ok("pwrite %d 8 4", limit-8) // ends exactly at the limit
	p.ok("pread %d 8 4", limit-8)
	// A growing write up to the limit is fine, past it is not.
	p.ok("truncate %d", shmMiB)
	p.wantErr("EFBIG", "pwrite %d 8192 5", limit-4096)
	wantShmSize(t, ch, shmMiB)
	p.ok("pwrite %d 4 5", limit-4)
	wantShmSize(t, ch, limit)
	p.ok("pread %d %d 0", shmMiB, limit-4-shmMiB)
	p.finish()

	failures := 8 // so far: 1 by truncate(1), 7 by C
	for _, lang := range shmLangs(t)[1:] {
		failures += 3
		q := startShmPeer(t, lang)
		q.wantErr("EFBIG", "truncpath %s %d", shm, limit+1)
		q.ok("open %s rw", shm)
		q.wantErr("EFBIG", "truncate %d", limit+4096)
		q.wantErr("EFBIG", "pwrite %d 1 3", limit)
		q.finish()
	}
	wantShmSize(t, ch, limit)

	// Each failure is explained in the log, at warn.
	n := 0
	for _, rec := range d.logLines() {
		if e := rec["errno"]; e == "EFBIG" || e == syscall.EFBIG.Error() {
			n++
			if level, _ := rec["level"].(string); !strings.HasPrefix(strings.ToLower(level), "warn") {
				t.Errorf("EFBIG logged at %q, want warn: %v", level, rec)
			}
		}
	}
	if n < failures {
		t.Errorf("%d log lines say EFBIG, want one for each of the %d failures above; log:\n%s", n, failures, d.logText())
	}
}

func testShmBadSizes(t *testing.T, d *daemon) {
	ch := d.channel("bad")
	shm := filepath.Join(ch, "shm")
	p := startShmPeer(t, "C")
	p.ok("open %s rw", shm)
	// The kernel refuses a negative length itself.
	p.wantErr("EINVAL", "truncate -1")
	// Absurd sizes are beyond --shm-max (1 GiB here): EFBIG, says the spec.
	for _, size := range []uint64{1 << 40, 1 << 62, 1<<62 + 1, 1<<63 - 1} {
		if got := p.do("truncate %d", size); got != "err EFBIG" {
			t.Errorf("ftruncate to %d: %q, want err EFBIG (SPEC shm 1: \"up to --shm-max; beyond it EFBIG\")", size, got)
		}
	}
	for _, off := range []uint64{1 << 62, 1<<63 - 2} {
		if got := p.do("pwrite %d 1 1", off); got != "err EFBIG" {
			t.Errorf("pwrite of 1 byte at %d: %q, want err EFBIG", off, got)
		}
	}
	p.finish()
	wantShmSize(t, ch, 0)
	for _, lang := range shmLangs(t)[1:] {
		q := startShmPeer(t, lang)
		q.wantErr("EINVAL", "truncpath %s -1", shm)
		q.finish()
	}
	wantShmSize(t, ch, 0)
}

// shmSharing has a process in langA and one in langB map the same shm and
// see each other's stores, in both directions, with no msync.
func shmSharing(langA, langB string) func(t *testing.T, d *daemon) {
	return func(t *testing.T, d *daemon) {
		shm := filepath.Join(d.channel("share"), "shm")
		const size, half = 1 * shmMiB, 512 * shmKiB
		a, b := startShmPeer(t, langA), startShmPeer(t, langB)
		a.ok("open %s rw", shm)
		a.ok("truncate %d", size)
		a.ok("map %d", size)
		b.ok("open %s rw", shm)
		b.ok("map %d", size)

		a.ok("fill 0 %d 1", half)
		b.ok("check 0 %d 1", half) // A's stores, seen by B
		b.ok("fill %d %d 2", half, half)
		a.ok("check %d %d 2", half, half) // and B's by A
		// Again over the same bytes, each way, and at odd offsets.
		a.ok("fill 4093 7 3")
		b.ok("check 4093 7 3")
		b.ok("check 0 4093 1")
		b.ok("fill 0 4096 4")
		a.ok("check 0 4096 4")
		a.ok("check 4100 %d 1", half-4100)
		for _, p := range []*shmPeer{a, b} {
			p.ok("unmap")
			p.ok("close")
			p.finish()
		}
	}
}

func testShmThreeMappers(t *testing.T, d *daemon) {
	shm := filepath.Join(d.channel("three"), "shm")
	const part = 64 * shmKiB
	var peers []*shmPeer
	for i, lang := range shmLangs(t) {
		p := startShmPeer(t, lang)
		p.ok("open %s rw", shm)
		if i == 0 {
			p.ok("truncate %d", 3*part)
		}
		p.ok("map %d", 3*part)
		peers = append(peers, p)
	}
	// Each stores its part; every other one sees it.
	for i, p := range peers {
		p.ok("fill %d %d %d", i*part, part, 10+i)
		for j, q := range peers {
			if j != i {
				q.ok("check %d %d %d", i*part, part, 10+i)
			}
		}
	}
	// Each in turn overwrites the same page; the next sees it.
	for round := range 6 {
		p, q := peers[round%len(peers)], peers[(round+1)%len(peers)]
		p.ok("fill 8 4000 %d", 20+round)
		q.ok("check 8 4000 %d", 20+round)
	}
	for _, p := range peers {
		p.ok("unmap")
		p.finish()
	}
}

func testShmIOAgrees(t *testing.T, d *daemon) {
	pairs := [][2]string{{"C", "Python"}, {"Go", "C"}, {"Python", "Go"}}
	for i, pair := range pairs {
		if !shmHave(t, pair[0]) || !shmHave(t, pair[1]) {
			continue
		}
		shm := filepath.Join(d.channel(fmt.Sprintf("io%d", i)), "shm")
		const size = 256 * shmKiB
		m, rw := startShmPeer(t, pair[0]), startShmPeer(t, pair[1])
		m.ok("open %s rw", shm)
		m.ok("truncate %d", size)
		m.ok("map %d", size)
		m.ok("fill 0 %d 1", size)
		rw.ok("open %s rw", shm)
		rw.ok("pread 0 %d 1", size) // the mapper's stores, seen by pread, no msync
		rw.ok("read 0 %d 1", size)  // and by read
		rw.ok("pwrite 4096 8192 2")
		m.ok("check 4096 8192 2") // pwrite, seen by an existing mapping
		m.ok("check 0 4096 1")
		m.ok("check 12288 %d 1", size-12288)
		m.ok("fill 100 50 3")
		rw.ok("pread 100 50 3")
		rw.ok("pwrite 20001 3 4")
		m.ok("check 20001 3 4")
		m.ok("check 20004 10 1")
		rw.finish()
		m.ok("unmap")
		m.finish()
	}
}

func testShmPersistence(t *testing.T, d *daemon) {
	ch := d.channel("keep")
	shm := filepath.Join(ch, "shm")
	const size = 1 * shmMiB
	a := startShmPeer(t, "C")
	a.ok("open %s rw", shm)
	a.ok("truncate %d", size)
	a.ok("map %d", size)
	a.ok("fill 0 %d 11", size)
	a.ok("unmap")
	a.ok("close")
	a.finish()
	// Nobody has the file open or mapped now.
	wantShmSize(t, ch, size)

	b := startShmPeer(t, "Python")
	b.ok("open %s rw", shm)
	b.ok("map %d", size)
	b.ok("check 0 %d 11", size)
	b.ok("fill 0 4096 12")
	b.finish() // exits without unmapping or closing
	c := startShmPeer(t, "Go")
	c.ok("open %s r", shm)
	c.ok("pread 0 4096 12")
	c.ok("pread 4096 %d 11", size-4096)
	c.finish()

	if !dropCaches(t) {
		return
	}
	// The kernel's copy is gone: the bytes come back from the daemon.
	e := startShmPeer(t, "C")
	e.ok("open %s rw", shm)
	e.ok("map %d", size)
	if got := e.ok("resident"); got != "0" {
		t.Logf("after drop_caches %s pages of shm are still in the page cache; the read-back below is partly from it", got)
	}
	e.ok("read 0 4096 12")
	e.ok("check 4096 %d 11", size-4096)
	e.ok("unmap")
	e.finish()
}

func testShmMsync(t *testing.T, d *daemon) {
	ch := d.channel("msync")
	shm := filepath.Join(ch, "shm")
	const size = 1 * shmMiB
	a := startShmPeer(t, "C")
	a.ok("open %s rw", shm)
	a.ok("truncate %d", size)
	a.ok("map %d", size)
	a.ok("fill 0 %d 21", size)
	a.ok("msync")
	// Still mapped, never unmapped: after msync the daemon's own copy (the
	// memory file behind the region) holds the bytes.
	if region := shmDaemonRegion(t, d); region != "" {
		got, err := os.ReadFile(region)
		if err != nil {
			t.Fatalf("reading the daemon's region %s: %v", region, err)
		}
		if why := shmDifference(got, size, 21); why != "" {
			t.Errorf("after msync(MS_SYNC) the daemon's copy is not the mapping's: %s", why)
		}
	}
	a.ok("fill 0 4096 22")
	a.ok("msync")
	a.ok("unmap")
	a.finish()
	if !dropCaches(t) {
		return
	}
	b := startShmPeer(t, "Python")
	b.ok("open %s rw", shm)
	b.ok("map %d", size)
	b.ok("check 0 4096 22")
	b.ok("check 4096 %d 21", size-4096)
	b.finish()
}

func testShmRecipe(t *testing.T, d *daemon) {
	const size = 1 * shmMiB
	langs := shmLangs(t)
	// Each language starts once on a fresh channel (its ftruncate sets the
	// size); the others then find its bytes and leave theirs, in turn.
	for first := range langs {
		ch := d.channel("recipe-" + strings.ToLower(langs[first]))
		shm := filepath.Join(ch, "shm")
		check := "0" // a fresh region is zeros
		for i := range len(langs) + 1 {
			lang := langs[(first+i)%len(langs)]
			fill := strconv.Itoa(30 + i)
			if i == len(langs) {
				fill = "-"
			}
			argv := shmCommand(t, lang, "recipe", shm, strconv.Itoa(size), check, fill)
			if out := run(t, argv[0], argv[1:]...); out != "ok\n" {
				t.Errorf("%s recipe printed %q", lang, out)
			}
			check = fill
		}
		wantShmSize(t, ch, size)
	}
}

// shmRmdirMapped removes a channel whose shm a process in lang has mapped
// (its file closed) and another has open (not mapped): both keep working
// on the old region, which is freed when the last lets go; a new channel of
// the same name starts empty.
func shmRmdirMapped(lang string) func(t *testing.T, d *daemon) {
	return func(t *testing.T, d *daemon) {
		name := "rm-" + strings.ToLower(lang)
		ch := d.channel(name)
		shm := filepath.Join(ch, "shm")
		const size, touched = 1 * shmMiB, 256 * shmKiB
		m := startShmPeer(t, lang)
		m.ok("open %s rw", shm)
		m.ok("truncate %d", size)
		m.ok("map %d", size)
		m.ok("fill 0 %d 31", touched) // only these pages are in memory yet
		m.ok("close")
		h := startShmPeer(t, "C")
		h.ok("open %s rw", shm)

		if err := os.Remove(ch); err != nil {
			t.Fatalf("rmdir %s: %v", ch, err)
		}
		if _, err := os.Stat(shm); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat of the removed channel's shm: %v, want ENOENT", err)
		}
		m.ok("check 0 %d 31", touched)
		m.ok("fill %d %d 32", touched, size-touched) // pages faulted in after rmdir
		m.ok("check %d %d 32", touched, size-touched)
		h.ok("pread 0 %d 31", touched)
		h.ok("pread %d %d 32", touched, size-touched)
		h.ok("pwrite 0 4096 33")
		m.ok("check 0 4096 33")
		m.ok("msync") // written back to the removed channel's region
		m.ok("unmap")
		m.finish()
		if shmFreedLogged(d, name) {
			t.Errorf("the region was freed while a handle was still open:\n%s", d.logText())
		}
		h.ok("pread 0 4096 33")
		h.ok("pread 4096 %d 31", touched-4096)
		h.ok("close")
		h.finish()
		d.waitLog(func(rec map[string]any) bool {
			return rec["msg"] == "shared region freed" && rec["channel"] == name
		})

		// A new channel with the same name has a new, empty region.
		ch = d.channel(name)
		wantShmSize(t, ch, 0)
		n := startShmPeer(t, "C")
		n.ok("open %s rw", shm)
		n.ok("truncate %d", size)
		n.ok("pread 0 %d 0", size)
		n.finish()
	}
}

func testShmLarge(t *testing.T, d *daemon) {
	ch := d.channel("large")
	shm := filepath.Join(ch, "shm")
	const size = 256 * shmMiB
	took := func(what string, start time.Time) {
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	}
	start := time.Now()
	a := startShmPeer(t, "C")
	a.ok("open %s rw", shm)
	a.ok("truncate %d", size)
	a.ok("map %d", size)
	step := time.Now()
	a.ok("fill 0 %d 41", size)
	took("fill 256 MiB through a mapping", step)

	b := startShmPeer(t, "C")
	b.ok("open %s rw", shm)
	b.ok("map %d", size)
	step = time.Now()
	b.ok("check 0 %d 41", size)
	took("check it through another process's mapping", step)
	step = time.Now()
	b.ok("read 0 %d 41", size)
	took("check it with read(2)", step)
	step = time.Now()
	a.ok("unmap")
	took("unmap (writes back what is dirty)", step)
	a.finish()
	b.finish()
	wantShmSize(t, ch, size)

	if dropCaches(t) {
		c := startShmPeer(t, "C")
		c.ok("open %s r", shm)
		step = time.Now()
		c.ok("read 0 %d 41", size)
		took("read(2) it back from the daemon after drop_caches", step)
		c.finish()
	}
	took("the whole test", start)
}

// Helpers.

// shmLangs returns the languages of the shm clients this machine can run,
// C first.
func shmLangs(t *testing.T) []string {
	var langs []string
	for _, l := range []string{"C", "Python", "Go"} {
		if shmHave(t, l) {
			langs = append(langs, l)
		}
	}
	if len(langs) == 0 || langs[0] != "C" {
		t.Skip("no C compiler (cc)")
	}
	return langs
}

// shmHave reports whether a client in lang can run here.
func shmHave(t *testing.T, lang string) bool {
	tool := map[string]string{"C": "cc", "Python": "python3", "Go": "go"}[lang]
	_, err := exec.LookPath(tool)
	if err != nil {
		t.Logf("no %s here: the %s client's part is skipped", tool, lang)
	}
	return err == nil
}

// shmCommand returns the command line of a client in lang: C (shmtool),
// Python (clients/py/shm_ARGS[0].py) or Go (shmclient).
func shmCommand(t *testing.T, lang string, args ...string) []string {
	t.Helper()
	switch lang {
	case "C":
		return append([]string{cBinary(t, "clients/shmtool.c")}, args...)
	case "Python":
		if _, err := exec.LookPath("python3"); err != nil {
			t.Skip("no python3")
		}
		return append([]string{"python3", filepath.Join("clients", "py", "shm_"+args[0]+".py")}, args[1:]...)
	case "Go":
		return append([]string{goBinary(t, "github.com/ipcfs/ipcfs/tests/shmclient")}, args...)
	}
	t.Fatalf("no shm client in %q", lang)
	return nil
}

// A shmPeer is a running client that takes commands on stdin and answers
// each with a line on stdout (see clients/shmtool.c for the commands).
type shmPeer struct {
	*child
	t *testing.T
}

var shmPeerCount struct {
	sync.Mutex
	n int
}

// startShmPeer starts a client in lang and stops it when the test ends.
func startShmPeer(t *testing.T, lang string) *shmPeer {
	t.Helper()
	argv := shmCommand(t, lang, "peer")
	shmPeerCount.Lock()
	shmPeerCount.n++
	name := fmt.Sprintf("%s peer %d", lang, shmPeerCount.n)
	shmPeerCount.Unlock()
	p := &shmPeer{child: startChild(t, name, exec.Command(argv[0], argv[1:]...)), t: t}
	t.Cleanup(func() {
		p.drain()
		p.killWait()
	})
	return p
}

// do sends one command and returns the answer.
func (p *shmPeer) do(format string, args ...any) string {
	p.t.Helper()
	line := fmt.Sprintf(format, args...)
	p.sendLine(line)
	return p.readLine(fmt.Sprintf("answer to %q", line))
}

// ok sends a command and fails the test unless the answer is "ok"; it
// returns what follows "ok ".
func (p *shmPeer) ok(format string, args ...any) string {
	p.t.Helper()
	ans := p.do(format, args...)
	if ans != "ok" && !strings.HasPrefix(ans, "ok ") {
		p.t.Fatalf("%s: %q answered %q, want ok", p.name, fmt.Sprintf(format, args...), ans)
	}
	return strings.TrimPrefix(strings.TrimPrefix(ans, "ok"), " ")
}

// wantErr sends a command and fails the test unless it failed with errno.
func (p *shmPeer) wantErr(errno string, format string, args ...any) {
	p.t.Helper()
	if ans := p.do(format, args...); ans != "err "+errno {
		p.t.Errorf("%s: %q answered %q, want err %s", p.name, fmt.Sprintf(format, args...), ans, errno)
	}
}

// finish ends the client's input and fails the test unless it exits 0.
func (p *shmPeer) finish() {
	p.t.Helper()
	if exited, err := p.endInput(); !exited || err != nil {
		p.t.Fatalf("%s: %s", p.name, p.exitReport())
	}
}

// wantShmSize checks a channel's shm size as stat, ls -l and status show it.
func wantShmSize(t *testing.T, ch string, size int64) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(ch, "shm"))
	if err != nil {
		t.Fatalf("stat shm: %v", err)
	}
	if fi.Size() != size {
		t.Errorf("stat shm: size %d, want %d", fi.Size(), size)
	}
	listed := ""
	for _, line := range strings.Split(sh(t, map[string]string{"CH": ch}, `ls -l "$CH"`), "\n") {
		if f := strings.Fields(line); len(f) >= 9 && f[len(f)-1] == "shm" {
			listed = f[4]
		}
	}
	if listed != strconv.FormatInt(size, 10) {
		t.Errorf("ls -l shows shm with size %q, want %d", listed, size)
	}
	if got := readStatus(t, ch)["shm_size"]; got != strconv.FormatInt(size, 10) {
		t.Errorf("status: shm_size %q, want %d", got, size)
	}
}

// dropCaches writes back and drops the kernel's page cache, so that what
// is read next comes from the daemon. It returns false, saying so, where
// that is not permitted.
func dropCaches(t *testing.T) bool {
	t.Helper()
	if _, errOut, err := runErr("sh", "-c", "sync && echo 3 > /proc/sys/vm/drop_caches"); err != nil {
		t.Logf("SKIPPED the part after drop_caches: cannot drop the page cache here: %v %s", err, strings.TrimSpace(errOut))
		return false
	}
	return true
}

// shmDaemonRegion returns a /proc path through which the daemon's memory
// file of its one shared region can be read, or "" (saying so) where there
// is no such single file.
func shmDaemonRegion(t *testing.T, d *daemon) string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Logf("SKIPPED reading the daemon's region: %v", err)
		return ""
	}
	var found []string
	for _, e := range ents {
		if link, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(link, "/memfd:ipcfs-shm") {
			found = append(found, filepath.Join(dir, e.Name()))
		}
	}
	if len(found) != 1 {
		t.Logf("SKIPPED reading the daemon's region: %d memory files named ipcfs-shm, want 1", len(found))
		return ""
	}
	return found[0]
}

// shmPattern returns bytes [off, off+n) of seed's pattern, as the clients
// compute it: little-endian words w[i] = (i*K) XOR (seed*C); seed 0 is
// zeros.
func shmPattern(off, n, seed uint64) []byte {
	const k, c = 0x9E3779B97F4A7C15, 0xD1B54A32D192ED03
	p := make([]byte, n)
	if seed == 0 {
		return p
	}
	var w [8]byte
	for i := uint64(0); i < n; {
		o := off + i
		binary.LittleEndian.PutUint64(w[:], (o>>3)*k^seed*c)
		i += uint64(copy(p[i:], w[o&7:]))
	}
	return p
}

// shmDifference says how got differs from the first size bytes of seed's
// pattern, or returns "".
func shmDifference(got []byte, size int, seed uint64) string {
	want := shmPattern(0, uint64(size), seed)
	if len(got) != size {
		return fmt.Sprintf("%d bytes, want %d", len(got), size)
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("byte %d is 0x%02x, want 0x%02x", i, got[i], want[i])
		}
	}
	return ""
}

// shmFreedLogged reports whether the daemon has logged freeing the region
// of the channel called name.
func shmFreedLogged(d *daemon, name string) bool {
	for _, rec := range d.logLines() {
		if rec["msg"] == "shared region freed" && rec["channel"] == name {
			return true
		}
	}
	return false
}
