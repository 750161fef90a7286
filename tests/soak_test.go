package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// soakDuration is how long the soak's writers write: 15 s by default, 3 s
// with -short, or IPCFS_SOAK (a Go duration, "10m") for a longer run.
func soakDuration(t *testing.T) time.Duration {
	if s := os.Getenv("IPCFS_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("IPCFS_SOAK=%q: %v", s, err)
		}
		return d
	}
	if testing.Short() {
		return 3 * time.Second
	}
	return 15 * time.Second
}

// The soak's channel limits: small, so that writers block often and the
// daemon's memory has a tight bound.
const (
	soakQueueBytes = 1 << 20
	soakQueueMsgs  = 32
)

type soakWriterReport struct {
	ID     int            `json:"id"`
	Full   uint64         `json:"full"`
	Tiny   map[string]int `json:"tiny"`
	EAGAIN int            `json:"eagain"`
}

// TestSoak runs writers and readers in separate processes on one channel
// for soakDuration: messages of random sizes from 1 B to 124 KiB with
// sequence numbers and checksums, read in random pieces, with O_NONBLOCK
// toggled at random, and Go readers and a writer under epoll; clients are
// stopped and continued at random (SIGSTOP/SIGCONT), which interrupts
// their parked requests and lets the queue fill. At the end every message
// was received exactly once and intact, and the daemon's heap stayed
// within what the queue limits allow. The clients are tests/soakclient.
func TestSoak(t *testing.T) {
	t.Parallel()
	d := mount(t)
	bin := soakclient(t)
	ch := d.channel("soak")
	msg := filepath.Join(ch, "msg")
	writeCtl(t, ch, fmt.Sprintf("queue-bytes %d\nqueue-msgs %d", soakQueueBytes, soakQueueMsgs))
	base := daemonStats(t, d)
	dur := soakDuration(t)
	seed := time.Now().UnixNano() % 1_000_000
	if s := os.Getenv("IPCFS_SOAK_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("IPCFS_SOAK_SEED=%q: %v", s, err)
		}
	}
	t.Logf("soak: %v, seed %d (IPCFS_SOAK_SEED replays the clients' choices, not the timing)", dur, seed)

	type proc struct {
		cmd      *exec.Cmd
		out, err strings.Builder
	}
	start := func(args ...string) *proc {
		p := &proc{cmd: exec.Command(bin, args...)}
		p.cmd.Env = append(os.Environ(), clientGORACE)
		p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var readers, writers []*proc
	for i, mode := range []string{"raw", "raw", "file", "file"} {
		readers = append(readers, start("soak-read", msg, strconv.FormatInt(seed+int64(i), 10), mode))
	}
	for i, mode := range []string{"raw", "raw", "raw", "file"} {
		writers = append(writers, start("soak-write", msg, strconv.Itoa(i+1), dur.String(), strconv.FormatInt(seed, 10), mode))
	}
	kill := func() {
		for _, p := range append(readers, writers...) {
			p.cmd.Process.Kill()
		}
	}

	// Sample the daemon's heap while the writers write.
	writerDone := make(chan int, len(writers))
	writerErr := make([]error, len(writers))
	for i, w := range writers {
		go func() { writerErr[i] = w.cmd.Wait(); writerDone <- i }()
	}
	readerDone := make(chan int, len(readers))
	readerErr := make([]error, len(readers))
	for i, r := range readers {
		go func() { readerErr[i] = r.cmd.Wait(); readerDone <- i }()
	}
	var maxHeap, maxParked, maxHandles float64
	sample := func() {
		st := daemonStats(t, d)
		maxHeap = max(maxHeap, st["heap_alloc"])
		maxParked = max(maxParked, st["parked_requests"])
		maxHandles = max(maxHandles, st["handles"])
	}
	// Every half second some clients stop (SIGSTOP) and the ones stopped
	// before go on (SIGCONT): the queue fills up while readers stand
	// still, and the stop signals interrupt requests parked in the
	// daemon, which the kernel then restarts.
	rnd := rand.New(rand.NewPCG(uint64(seed), 3))
	var stopped []*proc
	shake := func(stop bool) {
		for _, p := range stopped {
			p.cmd.Process.Signal(syscall.SIGCONT)
		}
		stopped = stopped[:0]
		for _, p := range append(readers, writers...) {
			if stop && rnd.IntN(3) == 0 {
				if p.cmd.Process.Signal(syscall.SIGSTOP) == nil {
					stopped = append(stopped, p)
				}
			}
		}
	}
	began := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(dur + hangTimeout)
	for running, n := len(writers), 0; running > 0; {
		select {
		case i := <-writerDone:
			running--
			if writerErr[i] != nil {
				shake(false)
				kill()
				t.Fatalf("writer %d (%s): %v\n%s", i+1, writers[i].cmd.Args[6], writerErr[i], writers[i].err.String())
			}
		case i := <-readerDone:
			shake(false)
			kill()
			t.Fatalf("reader %d (%s) ended before the hangup: %v\n%s", i, readers[i].cmd.Args[4], readerErr[i], readers[i].err.String())
		case <-tick.C:
			shake(time.Since(began) < dur)
			if n++; n%2 == 0 {
				sample()
			}
		case <-deadline:
			shake(false)
			kill()
			t.Fatalf("writers still running %v after they should have stopped (a hang); status %v", hangTimeout, readStatus(t, ch))
		}
	}
	shake(false)
	sample()
	t.Logf("writers done after %v", time.Since(began).Round(time.Millisecond))
	writeCtl(t, ch, "hangup")
	timeout := time.After(hangTimeout)
	for range readers {
		select {
		case i := <-readerDone:
			if readerErr[i] != nil {
				kill()
				t.Fatalf("reader %d (%s): %v\n%s", i, readers[i].cmd.Args[4], readerErr[i], readers[i].err.String())
			}
		case <-timeout:
			kill()
			t.Fatalf("readers still reading %v after the hangup (a hang); status %v", hangTimeout, readStatus(t, ch))
		}
	}
	t.Logf("readers done after %v", time.Since(began).Round(time.Millisecond))

	// Every message exactly once.
	var reports []soakWriterReport
	wantTiny := map[string]int{}
	var total, eagain uint64
	for i, w := range writers {
		var rep soakWriterReport
		if err := json.Unmarshal([]byte(w.out.String()), &rep); err != nil {
			t.Fatalf("writer %d printed %q: %v", i, w.out.String(), err)
		}
		reports = append(reports, rep)
		total += rep.Full
		eagain += uint64(rep.EAGAIN)
		for k, n := range rep.Tiny {
			wantTiny[k] += n
			total += uint64(n)
		}
	}
	seen := map[string]int{}
	gotTiny := map[string]int{}
	var received uint64
	readerEAGAIN := 0
	for i, r := range readers {
		sc := bufio.NewScanner(strings.NewReader(r.out.String()))
		n := 0
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 3 && f[0] == "f":
				seen[f[1]+"-"+f[2]]++
				n++
			case len(f) == 2 && f[0] == "t":
				gotTiny[f[1]]++
				n++
			case len(f) == 3 && f[0] == "done":
				if f[1] != strconv.Itoa(n) {
					t.Errorf("reader %d: says %s messages, printed %d", i, f[1], n)
				}
				k, _ := strconv.Atoi(f[2])
				readerEAGAIN += k
			default:
				t.Fatalf("reader %d printed %q", i, sc.Text())
			}
		}
		received += uint64(n)
		t.Logf("reader %d (%s): %d messages", i, r.cmd.Args[4], n)
	}
	bad := 0
	for _, rep := range reports {
		for s := range rep.Full {
			if k := fmt.Sprintf("%d-%d", rep.ID, s); seen[k] != 1 {
				if bad++; bad <= 10 {
					t.Errorf("message %s received %d times", k, seen[k])
				}
			}
			delete(seen, fmt.Sprintf("%d-%d", rep.ID, s))
		}
	}
	for k, n := range seen {
		if bad++; bad <= 20 {
			t.Errorf("message %s received %d times but never sent", k, n)
		}
	}
	for k, n := range wantTiny {
		if gotTiny[k] != n {
			t.Errorf("tiny message %s: sent %d, received %d", k, n, gotTiny[k])
		}
		delete(gotTiny, k)
	}
	for k, n := range gotTiny {
		t.Errorf("tiny message %s received %d times but never sent", k, n)
	}
	if received != total {
		t.Errorf("%d messages sent, %d received", total, received)
	}
	st := readStatus(t, ch)
	if st["sent"] != strconv.FormatUint(total, 10) || st["received"] != st["sent"] || st["messages"] != "0" || st["truncated"] != "0" {
		t.Errorf("status after the soak: %v; want sent = received = %d, messages 0, truncated 0", st, total)
	}
	t.Logf("%d messages; EAGAINs waited out in poll(2): %d by raw writers, %d by raw readers", total, eagain, readerEAGAIN)

	// The daemon's heap: at most the queue's bytes, plus for each waiting
	// request and each open file a message (a parked WRITE's copy, a
	// window), plus the 1 MiB receive buffers of the requests being read
	// and answered (one per serving loop, and what the pool that recycles
	// them keeps), on top of where it started — with room for the
	// allocator's slack, far below the gigabytes that went through.
	const perRequest, receiveBuffers, slack = 2 * (132 << 10), 8 * (1<<20 + 4096), 8 << 20
	bound := base["heap_alloc"] + soakQueueBytes + maxMsgSize + (maxHandles+maxParked+16)*perRequest + receiveBuffers + slack
	t.Logf("daemon heap: %.1f MiB at the start, at most %.1f MiB during the soak (bound %.1f MiB); at most %v parked requests and %v handles",
		base["heap_alloc"]/(1<<20), maxHeap/(1<<20), bound/(1<<20), maxParked, maxHandles)
	if maxHeap > bound {
		t.Errorf("the daemon's heap reached %.1f MiB, more than the queue limits allow (%.1f MiB)", maxHeap/(1<<20), bound/(1<<20))
	}
	waitStatus(t, ch, "readers", "0")
	after := daemonStats(t, d)
	if after["parked_requests"] != 0 || after["handles"] != 0 {
		t.Errorf("after the soak: parked_requests %v, handles %v; want 0 and 0", after["parked_requests"], after["handles"])
	}
	if after["goroutines"] > base["goroutines"]+goroutineSlack {
		t.Errorf("goroutines: %v before the soak, %v after", base["goroutines"], after["goroutines"])
	}
}

// maxMsgSize is the largest message the soak sends: 124 KiB.
const maxMsgSize = 124 << 10
