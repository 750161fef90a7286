package tests

import (
	"bufio"
	"context"
	"encoding/json"
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

	"github.com/ipcfs/ipcfs/internal/mountinfo"

	launcher "github.com/ipcfs/ipcfs/internal/daemon"
)

// The Go benchmarks of msg through a real mount, for benchstat:
//
//	go test -run '^$' -bench . -count 10 ./tests | tee new.txt
//
// Each runs its clients as `ipcfs bench client …` processes (raw blocking
// read(2)/write(2), see package bench) against a daemon of its own, and
// times only their loops: the client waits for a go byte before its first
// timed message. After the msg run it runs the same number of messages
// through a pipe, untimed, and reports the ratio:
//
//	x-pipe-time  round trip: msg's time / the pipe's (lower is better)
//	x-pipe-rate  one-way: msg's rate / the pipe's (higher is better)

var benchSizes = []int{64, 4 << 10, 64 << 10}

func BenchmarkMsg(b *testing.B) {
	mnt := benchMount(b)
	for _, size := range benchSizes {
		b.Run("roundtrip/"+sizeName(size), func(b *testing.B) { benchRoundTrip(b, mnt, size) })
	}
	for _, size := range benchSizes {
		b.Run("oneway/"+sizeName(size), func(b *testing.B) { benchOneWay(b, mnt, size) })
	}
}

func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

// benchRoundTrip times b.N ping-pongs of size-byte messages between two
// processes over two channels.
func benchRoundTrip(b *testing.B, mnt string, size int) {
	b.SetBytes(2 * int64(size)) // a message each way
	x, y := benchChannel(b, mnt), benchChannel(b, mnt)
	common := []string{"-size", strconv.Itoa(size)}
	startBenchClient(b, nil, false, "pong", append(common, "-in", x+"/msg", "-out", y+"/msg")...)
	ping := startBenchClient(b, nil, true, "ping", append(common, "-count", strconv.Itoa(b.N),
		"-out", x+"/msg", "-in", y+"/msg", "-hangup", x+"/ctl")...)
	msg := ping.timed(b)

	// The same through two pipes, untimed.
	b.StopTimer()
	xr, xw := benchPipe(b)
	yr, yw := benchPipe(b)
	startBenchClient(b, []*os.File{yw, xr}, false, "pong", common...)
	pipe := startBenchClient(b, []*os.File{xw, yr}, false, "ping", append(common, "-count", strconv.Itoa(b.N))...)
	closeAll(xr, xw, yr, yw)
	if p := pipe.result(b); p.ElapsedNs > 0 && msg.ElapsedNs > 0 {
		b.ReportMetric(float64(msg.ElapsedNs)/float64(p.ElapsedNs), "x-pipe-time")
	}
}

// benchOneWay times b.N size-byte messages from one process to another.
func benchOneWay(b *testing.B, mnt string, size int) {
	b.SetBytes(int64(size))
	x := benchChannel(b, mnt)
	common := []string{"-size", strconv.Itoa(size), "-count", strconv.Itoa(b.N)}
	recv := startBenchClient(b, nil, false, "recv", append(common, "-in", x+"/msg")...)
	send := startBenchClient(b, nil, true, "send", append(common, "-out", x+"/msg")...)
	send.gateOpen(b)
	msg := recv.result(b) // the last message has arrived
	b.StopTimer()
	send.result(b)

	r, w := benchPipe(b)
	precv := startBenchClient(b, []*os.File{nil, r}, false, "recv", common...)
	startBenchClient(b, []*os.File{w}, false, "send", common...)
	closeAll(r, w)
	// recv times its first message to its last: b.N-1 intervals for both.
	if p := precv.result(b); p.ElapsedNs > 0 && msg.ElapsedNs > 0 {
		b.ReportMetric(float64(p.ElapsedNs)/float64(msg.ElapsedNs), "x-pipe-rate")
	}
}

// benchMount starts a daemon for the benchmarks of b (and its
// sub-benchmarks) and returns its mountpoint. It stops the daemon when b
// ends. (mount in harness_test.go takes a *testing.T.)
func benchMount(b *testing.B) string {
	b.Helper()
	if bins.skip != "" {
		b.Skip(bins.skip)
	}
	if raceEnabled {
		b.Log("the daemon is built with -race: these numbers are not the release build's")
	}
	mnt := filepath.Join(b.TempDir(), "ipc")
	ld, err := launcher.Start(context.Background(), launcher.Config{
		Exe:          bins.ipcfs,
		Mountpoint:   mnt,
		Args:         []string{"--log-format", "json"},
		SysProcAttr:  &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM},
		MountTimeout: hangTimeout,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := ld.Stop(syscall.SIGTERM, hangTimeout); err != nil {
			b.Errorf("ipcfs did not exit cleanly on SIGTERM: %v\n%s", err, ld.Log())
		}
		runErr("fusermount3", "-u", "-z", mnt)
	})
	return mnt
}

var benchSeq struct {
	sync.Mutex
	n int
}

// benchChannel makes a fresh channel, removed when b ends.
func benchChannel(b *testing.B, mnt string) string {
	benchSeq.Lock()
	benchSeq.n++
	p := filepath.Join(mnt, fmt.Sprintf("b%d", benchSeq.n))
	benchSeq.Unlock()
	if err := os.Mkdir(p, 0o700); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.Remove(p) })
	return p
}

// benchPipe returns a blocking pipe.
func benchPipe(b *testing.B) (r, w *os.File) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		b.Fatal(err)
	}
	return os.NewFile(uintptr(p[0]), "pipe-r"), os.NewFile(uintptr(p[1]), "pipe-w")
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// benchClient is a running `ipcfs bench client` process.
type benchClient struct {
	*child
	gated bool
}

// benchResult is the part of a client's JSON result the benchmarks use.
type benchResult struct {
	Count     int64 `json:"count"`
	ElapsedNs int64 `json:"elapsed_ns"`
}

// startBenchClient starts `ipcfs bench client ROLE ARGS…` with extra as
// fds 3, 4…; a gated client waits for gateOpen before its timed loop. The
// client is killed if it is still running when b ends.
func startBenchClient(b *testing.B, extra []*os.File, gated bool, role string, args ...string) *benchClient {
	b.Helper()
	if gated {
		args = append(args, "-gate")
	}
	cmd := exec.Command(bins.ipcfs, append([]string{"bench", "client", role}, args...)...)
	cmd.ExtraFiles = extra
	cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1") // as ipcfs bench runs them: see bench/rawio.go
	c := &benchClient{child: startChild(b, fmt.Sprintf("bench client %q", cmd.Args[2:]), cmd), gated: gated}
	b.Cleanup(func() {
		c.drain()
		c.killWait()
	})
	return c
}

// line reads the client's next line of output, failing b on a hang.
func (c *benchClient) line(b *testing.B) string {
	b.Helper()
	return c.readLine("line") + "\n"
}

// gateOpen waits until the gated client is ready, starts b's timer and
// lets the client go.
func (c *benchClient) gateOpen(b *testing.B) {
	b.Helper()
	if l := c.line(b); l != "ready\n" {
		b.Fatalf("bench client said %q, want ready", l)
	}
	b.ResetTimer()
	b.StartTimer()
	if _, err := c.in.Write([]byte("g")); err != nil {
		b.Fatal(err)
	}
}

// timed opens the gate, waits for the result and stops b's timer.
func (c *benchClient) timed(b *testing.B) benchResult {
	b.Helper()
	c.gateOpen(b)
	r := c.result(b)
	b.StopTimer()
	return r
}

// result waits for the client's result and for it to exit.
func (c *benchClient) result(b *testing.B) benchResult {
	b.Helper()
	var r benchResult
	if err := json.Unmarshal([]byte(c.line(b)), &r); err != nil {
		b.Fatalf("%s: %v", c.name, err)
	}
	if exited, err := c.endInput(); !exited || err != nil {
		b.Fatalf("%s: %s", c.name, c.exitReport())
	}
	return r
}

// TestBenchCommand runs a short `ipcfs bench --json` and checks that it
// reports every transport and leaves no mount or temporary file behind.
// runBench runs ipcfs bench with args (TMPDIR tmp) within d, and returns
// its standard output and error.
func runBench(t *testing.T, tmp string, d time.Duration, args ...string) (stdout []byte, stderrText string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.ipcfs, append([]string{"bench"}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ipcfs bench %q: %v (ctx: %v)\n%s", args, err, ctx.Err(), stderr.String())
	}
	return out, stderr.String()
}

func TestBenchCommand(t *testing.T) {
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	tmp := t.TempDir()
	out, stderr := runBench(t, tmp, hangTimeout, "--json", "--sizes", "64,4K", "--time", "100ms", "--rounds", "1", "--shm-size", "1M")
	type latency struct {
		Transport    string  `json:"transport"`
		Size         int     `json:"size"`
		MedianNs     float64 `json:"median_ns"`
		Ratio        float64 `json:"ratio_to_pipe"`
		RatioToFloor float64 `json:"ratio_to_floor"`
	}
	var rep struct {
		Placements []struct {
			Name       string    `json:"name"`
			RoundTrip  []latency `json:"round_trip"`
			Throughput []struct {
				Transport    string  `json:"transport"`
				MsgsPerSec   float64 `json:"msgs_per_s"`
				RatioToFloor float64 `json:"ratio_to_floor"`
			} `json:"throughput"`
			Trivial struct {
				RatioToFloor float64 `json:"ratio_to_floor"`
			} `json:"trivial_request"`
		} `json:"placements"`
		Shm struct {
			Setup        struct{ Ratio float64 } `json:"setup_ns"`
			Amortization []struct {
				Messages int64 `json:"break_even_messages"`
			} `json:"amortization"`
		} `json:"shm"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("ipcfs bench --json printed something else: %v\n%s", err, out)
	}
	// Two placements, each with pipe, unix, floor and msg at two sizes.
	if len(rep.Placements) != 2 || rep.Placements[0].Name != "unpinned" || rep.Placements[1].Name != "one-cpu" || len(rep.Shm.Amortization) != 2 {
		t.Fatalf("want placements unpinned and one-cpu, 2 amortization points; got\n%s", out)
	}
	for _, p := range rep.Placements {
		if len(p.RoundTrip) != 8 || len(p.Throughput) != 8 {
			t.Errorf("%s: want 8 round trips, 8 rates; got %d, %d", p.Name, len(p.RoundTrip), len(p.Throughput))
		}
		for _, l := range p.RoundTrip {
			if l.MedianNs <= 0 || l.Ratio <= 0 || l.RatioToFloor <= 0 {
				t.Errorf("%s: round trip %s %d: median %v, ratio %v, to the floor %v", p.Name, l.Transport, l.Size, l.MedianNs, l.Ratio, l.RatioToFloor)
			}
		}
		for _, r := range p.Throughput {
			if r.MsgsPerSec <= 0 || r.RatioToFloor <= 0 {
				t.Errorf("%s: one-way %s: %v msgs/s, to the floor %v", p.Name, r.Transport, r.MsgsPerSec, r.RatioToFloor)
			}
		}
		if p.Trivial.RatioToFloor <= 0 {
			t.Errorf("%s: no trivial request ratio", p.Name)
		}
	}
	if rep.Shm.Setup.Ratio <= 0 {
		t.Errorf("no shm setup ratio:\n%s", out)
	}
	if !strings.Contains(stderr, "ipcfs bench: [") {
		t.Errorf("no progress line on stderr:\n%s", stderr)
	}
	checkBenchCleanedUp(t, tmp)
}

// TestBenchNATS runs a short `ipcfs bench --nats --json` and checks that
// the NATS section has every transport at every size, with positive
// figures and ratios (no thresholds), and that nothing is left behind.
func TestBenchNATS(t *testing.T) {
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	tmp := t.TempDir()
	out, _ := runBench(t, tmp, 2*hangTimeout, "--nats", "--json", "--only", "rtt,tput", "--sizes", "64,4K",
		"--time", "100ms", "--rounds", "1", "--placements", "unpinned")
	type row struct {
		Transport   string  `json:"transport"`
		Size        int     `json:"size"`
		MedianNs    float64 `json:"median_ns"`
		MsgsPerSec  float64 `json:"msgs_per_s"`
		RatioToNATS float64 `json:"ratio_to_nats_go"`
		RatioToMsg  float64 `json:"ratio_to_msg"`
	}
	var rep struct {
		NATS *struct {
			RoundTrip  []row `json:"round_trip"`
			Throughput []row `json:"throughput"`
		} `json:"nats"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("ipcfs bench --nats --json printed something else: %v\n%s", err, out)
	}
	if rep.NATS == nil {
		t.Fatalf("no NATS section:\n%s", out)
	}
	transports := []string{"nats.go", "msg-1-daemon", "msg-2-daemons"}
	check := func(what string, rows []row, value func(row) float64) {
		if len(rows) != 2*len(transports) {
			t.Fatalf("%s: %d rows, want %d:\n%s", what, len(rows), 2*len(transports), out)
		}
		for i, r := range rows {
			if r.Transport != transports[i%3] || r.Size != []int{64, 4096}[i/3] {
				t.Errorf("%s row %d: %s %d", what, i, r.Transport, r.Size)
			}
			if value(r) <= 0 || r.RatioToNATS <= 0 || r.RatioToMsg <= 0 {
				t.Errorf("%s %s %d: %+v", what, r.Transport, r.Size, r)
			}
		}
	}
	check("round trip", rep.NATS.RoundTrip, func(r row) float64 { return r.MedianNs })
	check("one-way", rep.NATS.Throughput, func(r row) float64 { return r.MsgsPerSec })
	checkBenchCleanedUp(t, tmp)
	if left, _ := filepath.Glob(filepath.Join(tmp, "ipcfs-nats-*")); len(left) > 0 {
		t.Errorf("NATS stores left: %q", left)
	}
}

// TestBenchInterrupted interrupts `ipcfs bench` in the middle, as Ctrl-C
// does, and checks that it cleans up and exits 130.
func TestBenchInterrupted(t *testing.T) {
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	tmp := t.TempDir()
	cmd := exec.Command(bins.ipcfs, "bench", "--time", "2s", "--rounds", "1", "--sizes", "64")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	// Its progress lines are on stderr.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	lines := make(chan string, 100)
	go func() {
		defer r.Close()
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			log.Write([]byte(sc.Text() + "\n"))
			select {
			case lines <- sc.Text():
			default: // nobody waits for lines any more
			}
		}
	}()
	// Wait until the msg round trip runs: the mount is busy then.
	deadline := time.After(hangTimeout)
	for running := false; !running; {
		select {
		case l, ok := <-lines:
			if !ok {
				waitTimeout(cmd)
				t.Fatalf("ipcfs bench ended before the msg round trip:\n%s", log.String())
			}
			running = strings.Contains(l, "round trip, msg")
		case <-deadline:
			cmd.Process.Kill()
			waitTimeout(cmd)
			t.Fatalf("ipcfs bench did not reach the msg round trip within %v:\n%s", hangTimeout, log.String())
		}
	}
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	if err = waitTimeout(cmd); errors.Is(err, errHang) {
		t.Fatalf("ipcfs bench did not exit within %v of SIGINT: %v", hangTimeout, err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("ipcfs bench exited with %v after SIGINT, want code 130\n%s", err, log.String())
	}
	checkBenchCleanedUp(t, tmp)
}

// checkBenchCleanedUp checks that nothing is mounted under tmp (the
// TMPDIR `ipcfs bench` ran with) and that it removed its directory there.
func checkBenchCleanedUp(t *testing.T, tmp string) {
	t.Helper()
	all, err := mountinfo.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if strings.HasPrefix(m.MountPoint, tmp) {
			t.Errorf("a mount is left: %+v", m)
			runErr("fusermount3", "-u", "-z", m.MountPoint)
		}
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "ipcfs-bench-*"))
	if len(left) > 0 {
		t.Errorf("temporary directories left: %q", left)
	}
}
