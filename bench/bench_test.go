package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestPercentile(t *testing.T) {
	xs := []int64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, tc := range []struct {
		p    float64
		want float64
	}{{50, 5}, {99, 10}, {10, 1}, {0, 1}, {100, 10}} {
		if got := percentile(xs, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}

func TestMedianAndRatio(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
	if got := median(nil); got != 0 {
		t.Errorf("median of nothing = %v", got)
	}
	for _, tc := range []struct{ a, b, want float64 }{
		{6, 3, 2}, {1, 0, 0}, {0, 1, 0}, {math.NaN(), 1, 0}, {math.Inf(1), 1, 0},
	} {
		if got := ratio(tc.a, tc.b); got != tc.want {
			t.Errorf("ratio(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := Config{Exe: "x"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sizes) != 3 || cfg.Rounds != 3 || cfg.CellTime != 2*time.Second || !cfg.Parts.Shm ||
		len(cfg.Placements) != 2 || cfg.Placements[0] != Unpinned || cfg.Placements[1] != OneCPU {
		t.Errorf("defaults: %+v", cfg)
	}
	for _, bad := range []Config{
		{}, {Exe: "x", Sizes: []int{0}}, {Exe: "x", Sizes: []int{MaxSize + 1}},
		{Exe: "x", Placements: []string{"two-cpus"}}, {Exe: "x", Placements: []string{OneCPU, OneCPU}},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestRotated(t *testing.T) {
	seen := map[string]int{}
	for round := range len(transports) {
		r := rotated(round)
		seen[r[0]]++
		if len(r) != len(transports) {
			t.Fatalf("rotated(%d) = %v", round, r)
		}
	}
	if len(seen) != len(transports) {
		t.Errorf("every transport should go first once: %v", seen)
	}
}

// fakeMeasurements are round numbers that make the report's arithmetic
// easy to check. Round trips: pipe 10 µs, unix 20 µs, floor 30 µs, msg
// 40 µs (plus up to 99 ns), and twice that on one CPU; rates: pipe 100k
// msgs/s, unix 50k, floor 25k, msg 12.5k (80 µs a message), halved on
// one CPU; trivial requests: floor 5 µs, msg 6 µs.
func fakeMeasurements(cfg Config) *measurements {
	m := newMeasurements(cfg)
	for pi, pl := range cfg.Placements {
		for _, size := range cfg.Sizes {
			for i, tr := range transports {
				var s []int64
				for k := range 100 {
					s = append(s, int64((pi+1)*(i+1)*10000+k))
				}
				m.rtt[cell{pl, tr, size}] = s
				m.tput[cell{pl, tr, size}] = []rateParts{{msgs: 100000 >> i >> pi, elapsed: time.Second}}
			}
		}
		for i, tr := range fuseTransports {
			m.trivial[cell{pl, tr, 0}] = []int64{int64(5000 + 1000*i)}
		}
	}
	m.tput[m.doorbell] = []rateParts{{msgs: 50000, elapsed: time.Second}} // 20 µs
	for _, region := range []int64{cfg.ShmRegion, ringRegion(64), ringRegion(64 << 10)} {
		m.setup[setupKey{false, region}] = []shmTimes{{Mkdir: 100, Map: 1000, Touch: 8000, Unmap: 1000, Remove: 100}}
		m.setup[setupKey{true, region}] = []shmTimes{{Mkdir: 10, Map: 100, Touch: 2000, Unmap: 200, Remove: 50}}
	}
	m.copyIn[false], m.copyIn[true] = []float64{1e9}, []float64{2e9}
	m.copyOut[false], m.copyOut[true] = []float64{1e9}, []float64{1e9}
	return m
}

func fakeReport(t *testing.T) *Report {
	t.Helper()
	cfg, err := Config{Exe: "x", Sizes: []int{64, 64 << 10}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	rep := newReport(cfg, time.Unix(0, 0))
	rep.fill(cfg, fakeMeasurements(cfg))
	return rep
}

func TestReportArithmetic(t *testing.T) {
	rep := fakeReport(t)
	if len(rep.Placements) != 2 {
		t.Fatalf("%d placements, want 2", len(rep.Placements))
	}
	for pi, p := range rep.Placements {
		if p.Name != []string{Unpinned, OneCPU}[pi] {
			t.Errorf("placement %d is %q", pi, p.Name)
		}
		if len(p.RoundTrip) != 8 || len(p.Throughput) != 8 {
			t.Fatalf("%s rows: %d round trip, %d throughput", p.Name, len(p.RoundTrip), len(p.Throughput))
		}
		msgRTT := p.RoundTrip[3]
		// 40 µs against the pipe's 10 and the floor's 30, in both
		// placements (both scale).
		if msgRTT.Transport != Msg || msgRTT.RatioToPipe < 3.9 || msgRTT.RatioToPipe > 4.1 ||
			msgRTT.RatioToFloor < 1.33 || msgRTT.RatioToFloor > 1.34 {
			t.Errorf("%s: msg round trip row: %+v", p.Name, msgRTT)
		}
		if f := p.RoundTrip[2]; f.Transport != Floor || f.RatioToFloor != 1 {
			t.Errorf("%s: floor round trip row: %+v", p.Name, f)
		}
		msgRate := p.Throughput[7]
		want := float64(int64(12500) >> pi)
		if msgRate.Transport != Msg || msgRate.Size != 64<<10 || msgRate.RatioToPipe != 0.125 || msgRate.RatioToFloor != 0.5 ||
			msgRate.MsgsPerSec != want || msgRate.MBPerSec != want*65536/1e6 {
			t.Errorf("%s: msg throughput row: %+v", p.Name, msgRate)
		}
		if tr := p.Trivial; tr == nil || tr.Floor.MedianNs != 5000 || tr.Msg.MedianNs != 6000 || tr.RatioToFloor != 1.2 {
			t.Errorf("%s: trivial request: %+v", p.Name, tr)
		}
	}
	s := rep.Shm
	if s.Setup.Ratio != 9100.0/2110 || s.CopyIn.Ratio != 0.5 || s.Teardown.Shm != 1100 {
		t.Errorf("shm: %+v", s)
	}
	// 64 B: msg 80 µs; shm 20 µs doorbell + 128 ns of copies: saves
	// 59.872 µs a message, one-time 10 µs: the first message pays.
	a := s.Amortization[0]
	if a.OneTimeNs != 10000 || a.Messages != 1 || a.DoorbellNsPerMsg != 20000 || a.MsgNsPerMsg != 80000 {
		t.Errorf("amortization at 64 B: %+v", a)
	}
	// 64 KiB: shm costs 20 µs + 2 × 65.5 µs > 80 µs: never.
	if a := s.Amortization[1]; a.Messages != -1 {
		t.Errorf("amortization at 64 KiB: %+v", a)
	}
	var met, notMet []string
	for _, tg := range rep.Targets {
		if tg.Met {
			met = append(met, tg.Name)
		} else {
			notMet = append(notMet, tg.Name)
		}
	}
	// Per placement: round trips at 2 sizes (1.33×: not met), the
	// trivial request (1.2×: met), 64 B one-way (0.5×: not met); shm: 4,
	// the copy out (1×) met.
	if len(rep.Targets) != 2*4+4 || len(met) != 3 {
		t.Errorf("targets met %q, not met %q", met, notMet)
	}
}

func TestReportOutputs(t *testing.T) {
	rep := fakeReport(t)
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Round trip, unpinned", "Round trip, every process on CPU 0", "x floor", "Trivial request, unpinned",
		"One-way throughput, every process on CPU 0", "shm against /dev/shm", "Amortization, unpinned", "Targets", "Notes", "64 KiB", "never", "RawSyscall"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, text.String())
		}
	}
	// The output is read by people choosing a transport, not by the
	// project's tracker: it says what each target is, never an issue.
	if strings.Contains(strings.ToLower(text.String()), "issue") {
		t.Errorf("table mentions an issue:\n%s", text.String())
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not read back: %v\n%s", err, js.String())
	}
	var svg bytes.Buffer
	if err := rep.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&svg)
	rects := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	// background + 16 bars + 4 legend swatches
	if rects != 21 {
		t.Errorf("SVG has %d rects, want 21", rects)
	}
}

// TestReadWrite checks the clients' raw I/O: a message that arrives in
// pieces (three records of a SOCK_SEQPACKET socket, one a read) is read
// whole, then end of file. Nothing blocks: a raw call that blocks keeps
// its P, which with GOMAXPROCS=1 would starve the goroutine that would
// unblock it.
func TestReadWrite(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	msg := bytes.Repeat([]byte("xyz"), 10<<10)
	for i := range 3 {
		if err := writeFull(fds[1], msg[i*10<<10:(i+1)*10<<10]); err != nil {
			t.Fatal(err)
		}
	}
	unix.Close(fds[1])
	buf := make([]byte, len(msg))
	ok, err := readMsg(fds[0], buf)
	if !ok || err != nil || !bytes.Equal(buf, msg) {
		t.Fatalf("readMsg = %v, %v", ok, err)
	}
	if ok, err := readMsg(fds[0], buf); ok || err != nil {
		t.Fatalf("readMsg at end of file = %v, %v", ok, err)
	}
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, []byte("ab"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(f, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	b := make([]byte, 1)
	if n, err := rawPread(fd, b, 1); n != 1 || err != nil || b[0] != 'b' {
		t.Errorf("rawPread = %d, %v, %q", n, err, b)
	}
	if _, err := rawRead(-1, b); err != unix.EBADF {
		t.Errorf("rawRead of fd -1: %v, want EBADF", err)
	}
}

func TestRegionDevShm(t *testing.T) {
	dir := t.TempDir()
	r := newRegion(dir, true, "x")
	if _, _, err := r.make(1 << 20); err != nil {
		t.Fatal(err)
	}
	if r.touch() <= 0 || len(r.mem) != 1<<20 || r.mem[4096] != 1 {
		t.Errorf("touch did not store to every page")
	}
	if _, _, err := r.remove(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	// In a directory that is not an ipcfs mount, mkdir makes no shm file.
	r = newRegion(dir, false, "y")
	if _, _, err := r.make(1 << 20); err == nil {
		t.Errorf("made a region without O_CREAT in a plain directory")
	}
}
