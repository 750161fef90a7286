package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"os"
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
	if len(cfg.Sizes) != 3 || cfg.Rounds != 3 || cfg.CellTime != 2*time.Second || !cfg.Parts.Shm {
		t.Errorf("defaults: %+v", cfg)
	}
	for _, bad := range []Config{{}, {Exe: "x", Sizes: []int{0}}, {Exe: "x", Sizes: []int{MaxSize + 1}}} {
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
// easy to check.
func fakeMeasurements(cfg Config) *measurements {
	m := newMeasurements()
	for _, size := range cfg.Sizes {
		for i, tr := range transports {
			var s []int64
			for k := range 100 {
				s = append(s, int64((i+1)*10000+k))
			}
			m.rtt[cell{tr, size}] = s
			// pipe 100k msgs/s, unix 50k, msg 25k (40 µs a message)
			m.tput[cell{tr, size}] = []rateParts{{msgs: 100000 >> i, elapsed: time.Second}}
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
	if len(rep.RoundTrip) != 6 || len(rep.Throughput) != 6 {
		t.Fatalf("rows: %d round trip, %d throughput", len(rep.RoundTrip), len(rep.Throughput))
	}
	msgRTT := rep.RoundTrip[2]
	if msgRTT.Transport != Msg || msgRTT.RatioToPipe < 2.9 || msgRTT.RatioToPipe > 3.1 {
		t.Errorf("msg round trip row: %+v", msgRTT)
	}
	msgRate := rep.Throughput[5]
	if msgRate.Transport != Msg || msgRate.Size != 64<<10 || msgRate.RatioToPipe != 0.25 || msgRate.MBPerSec != 25000*65536/1e6 {
		t.Errorf("msg throughput row: %+v", msgRate)
	}
	s := rep.Shm
	if s.Setup.Ratio != 9100.0/2110 || s.CopyIn.Ratio != 0.5 || s.Teardown.Shm != 1100 {
		t.Errorf("shm: %+v", s)
	}
	// 64 B: msg 40 µs; shm 20 µs doorbell + 128 ns of copies: saves
	// 19.872 µs a message, one-time 10 µs: the first message pays.
	a := s.Amortization[0]
	if a.OneTimeNs != 10000 || a.Messages != 1 {
		t.Errorf("amortization at 64 B: %+v", a)
	}
	// 64 KiB: shm costs 20 µs + 2 × 65.5 µs > 40 µs: never.
	if a := s.Amortization[1]; a.Messages != -1 {
		t.Errorf("amortization at 64 KiB: %+v", a)
	}
	var met, notMet int
	for _, tg := range rep.Targets {
		if tg.Met {
			met++
		} else {
			notMet++
		}
	}
	if len(rep.Targets) != 5 || met != 1 || notMet != 4 {
		t.Errorf("targets: %+v", rep.Targets)
	}
}

func TestReportOutputs(t *testing.T) {
	rep := fakeReport(t)
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Round trip", "One-way throughput", "shm against /dev/shm", "Amortization", "Targets", "Notes", "64 KiB", "never"} {
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
	// background + 12 bars + 3 legend swatches
	if rects != 16 {
		t.Errorf("SVG has %d rects, want 16", rects)
	}
}

// TestReadWrite checks the clients' raw I/O over a pipe, where a message
// may arrive in pieces.
func TestReadWrite(t *testing.T) {
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	msg := bytes.Repeat([]byte("x"), 100<<10) // above the pipe's capacity
	go func() {
		writeFull(p[1], msg)
		unix.Close(p[1])
	}()
	buf := make([]byte, len(msg))
	ok, err := readMsg(p[0], buf)
	if !ok || err != nil || !bytes.Equal(buf, msg) {
		t.Fatalf("readMsg = %v, %v", ok, err)
	}
	if ok, err := readMsg(p[0], buf); ok || err != nil {
		t.Fatalf("readMsg at end of file = %v, %v", ok, err)
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
