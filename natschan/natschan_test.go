package natschan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/ipcfs/ipcfs/channels"
)

// testTimeout turns a hang into a failure; it bounds no performance.
const testTimeout = 30 * time.Second

// testNamespace joins a fresh embedded server with a prefix of its own.
func testNamespace(t *testing.T, cfg Config) (*Namespace, *Server) {
	t.Helper()
	srv, err := StartServer(ServerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	cfg.URLs = []string{srv.ClientURL()}
	ns, err := Connect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns, srv
}

// joinAgain is a second daemon's namespace on the same server.
func joinAgain(t *testing.T, srv *Server, cfg Config) *Namespace {
	t.Helper()
	cfg.URLs = []string{srv.ClientURL()}
	ns, err := Connect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns
}

// result is what an op completed with.
type result struct {
	msg []byte
	err error
}

// start runs a Send (msg != nil) or Receive on q and returns the op and
// where its result arrives.
func start(q *Queue, msg []byte, wait bool) (channels.Op, <-chan result) {
	ch := make(chan result, 1)
	op := q.NewOp(func(m []byte, err error) { ch <- result{m, err} })
	if msg != nil {
		q.Send(op, msg, wait)
	} else {
		q.Receive(op, wait)
	}
	return op, ch
}

func await(t *testing.T, ch <-chan result, what string) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(testTimeout):
		t.Fatalf("%s never completed", what)
		return result{}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func send(t *testing.T, q *Queue, msg string) {
	t.Helper()
	_, ch := start(q, []byte(msg), true)
	if r := await(t, ch, "send "+msg); r.err != nil {
		t.Fatalf("send %q: %v", msg, r.err)
	}
}

func receive(t *testing.T, q *Queue) string {
	t.Helper()
	_, ch := start(q, nil, true)
	r := await(t, ch, "receive")
	if r.err != nil {
		t.Fatalf("receive: %v", r.err)
	}
	q.Delivered(r.msg)
	return string(r.msg)
}

func newChannel(t *testing.T, ns *Namespace, name string, l channels.Limits) *Queue {
	t.Helper()
	rec, err := ns.Create(Record{Name: name, Mode: 0o644, Limits: l, Created: time.Now(), Changed: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	q := ns.Queue(rec)
	t.Cleanup(func() { q.Close() })
	return q
}

var roomy = channels.Limits{MaxBytes: 1 << 20, MaxMsgs: 100}

func TestQueueFIFOAcrossDaemons(t *testing.T) {
	nsA, srv := testNamespace(t, Config{})
	nsB := joinAgain(t, srv, Config{})
	qa := newChannel(t, nsA, "fifo", roomy)
	rec, err := nsB.Get("fifo")
	if err != nil {
		t.Fatal(err)
	}
	qb := nsB.Queue(rec)
	defer qb.Close()
	for i := range 20 {
		send(t, qa, fmt.Sprintf("m%02d", i))
	}
	for i := range 20 {
		if got, want := receive(t, qb), fmt.Sprintf("m%02d", i); got != want {
			t.Fatalf("message %d: %q, want %q", i, got, want)
		}
	}
	// The last acknowledgement is on its way (Delivered does not wait).
	eventually(t, "the last acknowledgement", func() bool { return qa.Stats().Messages == 0 })
	st := qa.Stats()
	if st.Sent != 20 || st.Received != 20 || st.Messages != 0 || st.Bytes != 0 {
		t.Errorf("stats after 20 through: %+v", st)
	}
}

func TestQueueDefersAndRefuses(t *testing.T) {
	ns, _ := testNamespace(t, Config{})
	q := newChannel(t, ns, "d", roomy)
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"TrySend", q.TrySend([]byte("x")), channels.ErrDeferred},
		{"TrySend empty", q.TrySend(nil), channels.ErrEmptyMessage},
		{"TryReceive", func() error { _, err := q.TryReceive(); return err }(), channels.ErrDeferred},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// A receive that does not wait, of an empty queue.
	_, ch := start(q, nil, false)
	if r := await(t, ch, "non-blocking receive"); !errors.Is(r.err, channels.ErrWouldBlock) {
		t.Errorf("non-blocking receive of an empty queue: %v", r.err)
	}
}

func TestQueueCapacity(t *testing.T) {
	ns, _ := testNamespace(t, Config{})
	q := newChannel(t, ns, "cap", channels.Limits{MaxBytes: 10, MaxMsgs: 2})
	send(t, q, "12345678") // 8 bytes
	// By bytes: 8 + 5 > 10 waits; without waiting, ErrWouldBlock.
	_, ch := start(q, []byte("abcde"), false)
	if r := await(t, ch, "non-blocking send"); !errors.Is(r.err, channels.ErrWouldBlock) {
		t.Errorf("send over queue-bytes without waiting: %v, want ErrWouldBlock", r.err)
	}
	op, ch := start(q, []byte("abcde"), true)
	select {
	case r := <-ch:
		t.Fatalf("a send over queue-bytes completed: %v", r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if st := q.Stats(); st.BlockedWriters != 1 {
		t.Errorf("blocked writers %d, want 1", st.BlockedWriters)
	}
	// Room comes: the waiting send goes through.
	if got := receive(t, q); got != "12345678" {
		t.Fatalf("got %q", got)
	}
	if r := await(t, ch, "the waiting send"); r.err != nil {
		t.Fatalf("the waiting send: %v", r.err)
	}
	if op.Cancel() {
		t.Error("Cancel of a completed send reported true")
	}
	// A message larger than queue-bytes goes through an empty queue.
	if got := receive(t, q); got != "abcde" {
		t.Fatalf("got %q", got)
	}
	send(t, q, "this is longer than ten bytes")
	if got := receive(t, q); got != "this is longer than ten bytes" {
		t.Fatalf("got %q", got)
	}
	// By count: two queued, the third waits; canceled, it sends nothing.
	send(t, q, "1")
	send(t, q, "2")
	op, ch = start(q, []byte("3"), true)
	time.Sleep(100 * time.Millisecond)
	if !op.Cancel() {
		t.Fatal("Cancel of a send waiting for room reported false")
	}
	select {
	case r := <-ch:
		t.Fatalf("a canceled send completed: %v", r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if st := q.Stats(); st.Messages != 2 || st.Sent != 5 {
		t.Errorf("after the canceled send: %+v", st)
	}
}

func TestQueueHangupFlushClose(t *testing.T) {
	ns, _ := testNamespace(t, Config{})
	q := newChannel(t, ns, "h", roomy)
	send(t, q, "queued")
	if err := q.Hangup(); err != nil {
		t.Fatal(err)
	}
	if err := q.TrySend([]byte("x")); !errors.Is(err, channels.ErrHungUp) {
		t.Errorf("send after hangup: %v", err)
	}
	if got := receive(t, q); got != "queued" {
		t.Errorf("drain after hangup: %q", got)
	}
	_, ch := start(q, nil, true)
	if r := await(t, ch, "receive of a drained hung-up queue"); r.err != io.EOF {
		t.Errorf("receive after the drain: %v, want EOF", r.err)
	}
	if err := q.Reopen(); err != nil {
		t.Fatal(err)
	}
	send(t, q, "a")
	send(t, q, "b")
	if n, err := q.Flush(); err != nil || n != 2 {
		t.Errorf("flush: %d, %v; want 2", n, err)
	}
	st := q.Stats()
	if st.Messages != 0 || st.Sent != 3 || st.Received != 1 {
		t.Errorf("after the flush: %+v", st)
	}
	// Close: a blocked receive gets EOF.
	_, ch = start(q, nil, true)
	time.Sleep(100 * time.Millisecond)
	q.Close()
	if r := await(t, ch, "receive at close"); r.err != io.EOF {
		t.Errorf("receive at close: %v", r.err)
	}
}

// A receive canceled while its pull is out: a message that comes for it
// is given back and received by the next.
func TestQueueCanceledReceiveGivesBack(t *testing.T) {
	ns, _ := testNamespace(t, Config{})
	q := newChannel(t, ns, "c", roomy)
	op, _ := start(q, nil, true)
	time.Sleep(100 * time.Millisecond) // its pull is on the server
	if !op.Cancel() {
		t.Fatal("Cancel of a waiting receive reported false")
	}
	send(t, q, "once")
	if got := receive(t, q); got != "once" {
		t.Errorf("got %q", got)
	}
	eventually(t, "the queue empty after the receive", func() bool { return q.Stats().Messages == 0 })
}

// A message received and never delivered (its daemon died) comes again
// after the ack wait, to another daemon.
func TestQueueRedelivery(t *testing.T) {
	nsA, srv := testNamespace(t, Config{AckWait: time.Second})
	nsB := joinAgain(t, srv, Config{AckWait: time.Second})
	qa := newChannel(t, nsA, "r", roomy)
	rec, _ := nsB.Get("r")
	qb := nsB.Queue(rec)
	defer qb.Close()
	send(t, qa, "held")
	_, ch := start(qa, nil, true)
	if r := await(t, ch, "receive"); string(r.msg) != "held" {
		t.Fatalf("got %q, %v", r.msg, r.err)
	}
	nsA.Close() // dies without Delivered
	if got := receive(t, qb); got != "held" {
		t.Errorf("redelivered %q", got)
	}
}

func TestNamespaceChanges(t *testing.T) {
	nsA, srv := testNamespace(t, Config{Prefix: "ns"})
	nsB := joinAgain(t, srv, Config{Prefix: "ns"})
	var mu sync.Mutex
	var events []Event
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := nsB.Watch(ctx, func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	rec, err := nsA.Create(Record{Name: "a.b c", Uid: 1000, Mode: 0o640, Limits: roomy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nsA.Create(Record{Name: "a.b c", Limits: roomy}); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v, want ErrExists", err)
	}
	if _, err := nsA.Update("a.b c", func(r *Record) error { r.Uid = 2000; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := nsA.Rename("a.b c", "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := nsA.Get("a.b c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old name after rename: %v", err)
	}
	if n, err := nsA.Remove("d"); err != nil || n != 0 {
		t.Errorf("remove: %d, %v", n, err)
	}
	deadline := time.Now().Add(testTimeout)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"put a.b c 1000", "put a.b c 2000", "put d 2000", "del a.b c", "del d"}
	var got []string
	for _, e := range events {
		if e.Removed {
			got = append(got, "del "+e.Name)
		} else {
			if e.Record.ID != rec.ID {
				t.Errorf("event %v: id %s, want %s", e.Name, e.Record.ID, rec.ID)
			}
			got = append(got, fmt.Sprintf("put %s %d", e.Name, e.Record.Uid))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events seen by the other daemon: %q, want %q", got, want)
	}
}

// A daemon's own deletes are not played back to it by its watch.
func TestNamespaceOwnDeletesSkipped(t *testing.T) {
	ns, _ := testNamespace(t, Config{})
	var mu sync.Mutex
	var events []Event
	if err := ns.Watch(context.Background(), func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Create(Record{Name: "x", Limits: roomy}); err != nil {
		t.Fatal(err)
	}
	if err := ns.Rename("x", "y"); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Remove("y"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	// A put may race its own noting (the watch can deliver it before the
	// create returns its revision); fs applies puts by ID, idempotently.
	// A delete must never come back: it would remove what a rename made.
	for _, e := range events {
		if e.Removed {
			t.Errorf("an own delete played back: %+v", e)
		}
	}
}

// A queue leaves no goroutine behind once its watches are stopped and it
// is closed: pulls, refreshes, the refresh ticker, acknowledgements.
func TestQueueNoGoroutineLeak(t *testing.T) {
	ns, _ := testNamespace(t, Config{})
	q := newChannel(t, ns, "leak", roomy)
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	for range 3 {
		w := q.NewPollWatch(func() {})
		q.Poll(w, channels.Readable|channels.Writable) // listens, ticks
		send(t, q, "m")
		if got := receive(t, q); got != "m" {
			t.Fatalf("got %q", got)
		}
		w.Stop()
	}
	start(q, nil, true) // a pull left waiting, ended by Close
	time.Sleep(100 * time.Millisecond)
	q.Close()
	eventually(t, fmt.Sprintf("goroutines back to %d", before), func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// Sweep deletes a channel stream no record names, once old enough, and
// nothing else.
func TestSweepOrphans(t *testing.T) {
	ns, _ := testNamespace(t, Config{Prefix: "sw"})
	live := newChannel(t, ns, "live", roomy)
	orphan := nuid.Next()
	ctx, cancel := ns.ctx()
	defer cancel()
	if _, err := ns.js.CreateStream(ctx, StreamConfig("sw", orphan, roomy, 1)); err != nil {
		t.Fatal(err)
	}
	young, err := ns.Sweep()
	if err != nil || young != 0 {
		t.Fatalf("sweep of a young orphan: %d, %v; want 0", young, err)
	}
	defer func(age time.Duration) { orphanAge = age }(orphanAge)
	orphanAge = 0
	n, err := ns.Sweep()
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v; want 1", n, err)
	}
	if _, err := ns.js.Stream(ctx, "sw_"+orphan); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the orphan after the sweep: %v", err)
	}
	// The live channel's stream and the bucket stay.
	send(t, live, "still")
	if got := receive(t, live); got != "still" {
		t.Errorf("live channel after the sweep: %q", got)
	}
	if _, err := ns.Get("live"); err != nil {
		t.Errorf("the record after the sweep: %v", err)
	}
}
