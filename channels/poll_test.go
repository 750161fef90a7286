package channels

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rs formats a Readiness as a subset of "RWH".
type rs Readiness

func (r rs) String() string {
	s := ""
	for _, b := range []struct {
		bit  Readiness
		name string
	}{{Readable, "R"}, {Writable, "W"}, {HangUp, "H"}} {
		if Readiness(r)&b.bit != 0 {
			s += b.name
		}
	}
	if s == "" {
		return "-"
	}
	return s
}

func TestPollReadiness(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		setup  func(c *Channel)
		want   Readiness
	}{
		{"empty", big, func(c *Channel) {}, Writable},
		{"empty with parked receivers", big, func(c *Channel) { receive(c, false) }, Writable},
		{"room left", Limits{MaxBytes: 10, MaxMsgs: 2}, func(c *Channel) { send(c, "abc", false) }, Readable | Writable},
		{"room for exactly one byte", Limits{MaxBytes: 4, MaxMsgs: 10}, func(c *Channel) { send(c, "abc", false) }, Readable | Writable},
		{"full by count", Limits{MaxBytes: 10, MaxMsgs: 1}, func(c *Channel) { send(c, "a", false) }, Readable},
		{"full by bytes", Limits{MaxBytes: 3, MaxMsgs: 10}, func(c *Channel) { send(c, "abc", false) }, Readable},
		{"one message larger than MaxBytes", Limits{MaxBytes: 3, MaxMsgs: 10}, func(c *Channel) { send(c, "abcdef", false) }, Readable},
		{"a parked sender, though one byte would fit", Limits{MaxBytes: 4, MaxMsgs: 10}, func(c *Channel) {
			send(c, "abc", false)
			send(c, "defg", false)
		}, Readable},
		{"hung up with messages", Limits{MaxBytes: 1, MaxMsgs: 1}, func(c *Channel) {
			send(c, "a", false)
			c.Hangup()
		}, Readable | Writable},
		{"hung up and drained", big, func(c *Channel) { c.Hangup() }, Readable | Writable | HangUp},
		{"hung up, then drained", big, func(c *Channel) {
			send(c, "a", false)
			c.Hangup()
			receive(c, false)
		}, Readable | Writable | HangUp},
		{"reopened", Limits{MaxBytes: 1, MaxMsgs: 1}, func(c *Channel) {
			send(c, "a", false)
			c.Hangup()
			c.Reopen()
		}, Readable},
		{"closed", big, func(c *Channel) { c.Close() }, Readable | Writable | HangUp},
		{"closed with messages", big, func(c *Channel) {
			send(c, "a", false)
			c.Close()
		}, Readable | Writable | HangUp},
		{"flushed", Limits{MaxBytes: 1, MaxMsgs: 1}, func(c *Channel) {
			send(c, "a", false)
			c.Flush()
		}, Writable},
		{"limits grown", Limits{MaxBytes: 1, MaxMsgs: 1}, func(c *Channel) {
			send(c, "a", false)
			_ = c.SetLimits(Limits{MaxBytes: 2, MaxMsgs: 2})
		}, Readable | Writable},
		{"limits shrunk below the queue", big, func(c *Channel) {
			send(c, "abc", false)
			send(c, "def", false)
			_ = c.SetLimits(Limits{MaxBytes: 1, MaxMsgs: 1})
		}, Readable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, tt.limits)
			tt.setup(c)
			if got := c.Poll(nil, Readable|Writable|HangUp); got != tt.want {
				t.Errorf("Poll = %v, want %v", rs(got), rs(tt.want))
			}
			// Writable promises that a one-byte send would not wait.
			if c.Poll(nil, 0)&Writable != 0 && !c.Stats().HungUp && !c.Stats().Closed {
				if _, r := send(c, "x", true); r.result().err != nil {
					t.Errorf("Writable, but a one-byte send got %v", r.result().err)
				}
			}
		})
	}
}

// wakeCounter is a watch's wake function that counts its calls.
type wakeCounter struct{ n atomic.Int32 }

func (w *wakeCounter) wake()      { w.n.Add(1) }
func (w *wakeCounter) calls() int { return int(w.n.Load()) }

// TestWatchWakes arms one watch per readiness bit, does one action, and
// checks which were woken: those in mustWake exactly once, none in
// mustNot. A bit in neither may or may not be woken (the readiness it asks
// about did not rise, so a wake would be spurious but allowed: "may have
// changed").
func TestWatchWakes(t *testing.T) {
	const all = Readable | Writable | HangUp
	tests := []struct {
		name     string
		limits   Limits
		setup    func(c *Channel) func() // returns the action
		mustWake Readiness
		mustNot  Readiness
	}{
		{
			name:   "Send to an empty queue",
			limits: big,
			setup:  func(c *Channel) func() { return func() { send(c, "a", false) } },
			// Becoming readable.
			mustWake: Readable, mustNot: Writable | HangUp,
		},
		{
			name:   "Send to an already readable queue (edge-triggered pollers need it)",
			limits: big,
			setup: func(c *Channel) func() {
				send(c, "a", false)
				return func() { send(c, "b", false) }
			},
			mustWake: Readable, mustNot: Writable | HangUp,
		},
		{
			name:   "Send handed to a parked receiver",
			limits: big,
			setup: func(c *Channel) func() {
				receive(c, false)
				return func() { send(c, "a", false) }
			},
			mustNot: Writable | HangUp,
		},
		{
			name:   "Send that would block",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			setup: func(c *Channel) func() {
				send(c, "a", false)
				return func() { send(c, "b", true) }
			},
			mustNot: all,
		},
		{
			name:   "Send that parks",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			setup: func(c *Channel) func() {
				send(c, "a", false)
				return func() { send(c, "b", false) }
			},
			mustNot: all,
		},
		{
			name:    "empty Send",
			limits:  big,
			setup:   func(c *Channel) func() { return func() { send(c, "", false) } },
			mustNot: all,
		},
		{
			name:   "Receive",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			setup: func(c *Channel) func() {
				send(c, "a", false)
				return func() { receive(c, false) }
			},
			mustWake: Writable, mustNot: Readable | HangUp,
		},
		{
			name:   "Receive that admits a parked sender",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			setup: func(c *Channel) func() {
				send(c, "a", false)
				send(c, "b", false)
				return func() { receive(c, false) }
			},
			mustWake: Writable, mustNot: HangUp,
		},
		{
			name:     "TrySend",
			limits:   big,
			setup:    func(c *Channel) func() { return func() { _ = c.TrySend([]byte("a")) } },
			mustWake: Readable, mustNot: Writable | HangUp,
		},
		{
			name:   "TryReceive",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			setup: func(c *Channel) func() {
				send(c, "a", false)
				return func() { _, _ = c.TryReceive() }
			},
			mustWake: Writable, mustNot: Readable | HangUp,
		},
		{
			name:   "TryReceive of the last message after hangup",
			limits: big,
			setup: func(c *Channel) func() {
				send(c, "a", false)
				c.Hangup()
				return func() { _, _ = c.TryReceive() }
			},
			mustWake: HangUp,
		},
		{
			name:    "Receive that would block",
			limits:  big,
			setup:   func(c *Channel) func() { return func() { receive(c, true) } },
			mustNot: all,
		},
		{
			name:    "Receive that parks",
			limits:  big,
			setup:   func(c *Channel) func() { return func() { receive(c, false) } },
			mustNot: all,
		},
		{
			name:   "Flush",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			setup: func(c *Channel) func() {
				send(c, "a", false)
				return func() { c.Flush() }
			},
			mustWake: Writable, mustNot: Readable | HangUp,
		},
		{
			name:   "Flush that admits a parked sender",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			setup: func(c *Channel) func() {
				send(c, "a", false)
				send(c, "b", false)
				return func() { c.Flush() }
			},
			mustWake: Writable, mustNot: HangUp,
		},
		{
			name:   "SetLimits",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			setup: func(c *Channel) func() {
				send(c, "a", false)
				return func() { _ = c.SetLimits(Limits{MaxBytes: 10, MaxMsgs: 10}) }
			},
			mustWake: Writable, mustNot: Readable | HangUp,
		},
		{
			name:   "SetLimits that admits a parked sender",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			setup: func(c *Channel) func() {
				send(c, "a", false)
				send(c, "b", false)
				return func() { _ = c.SetLimits(Limits{MaxBytes: 10, MaxMsgs: 10}) }
			},
			mustWake: Writable, mustNot: HangUp,
		},
		{
			name:     "Hangup of an empty channel",
			limits:   big,
			setup:    func(c *Channel) func() { return c.Hangup },
			mustWake: all,
		},
		{
			name:   "Hangup of a full channel",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			setup: func(c *Channel) func() {
				send(c, "a", false)
				return c.Hangup
			},
			mustWake: Readable | Writable,
		},
		{
			name:     "Close",
			limits:   big,
			setup:    func(c *Channel) func() { return func() { c.Close() } },
			mustWake: all,
		},
		{
			name:   "Close after hangup, with messages left",
			limits: big,
			setup: func(c *Channel) func() {
				send(c, "a", false)
				c.Hangup()
				return func() { c.Close() }
			},
			mustWake: HangUp,
		},
		{
			name:   "second Close",
			limits: big,
			setup: func(c *Channel) func() {
				c.Close()
				return func() { c.Close() }
			},
			mustNot: all,
		},
		{
			name:   "second Hangup",
			limits: big,
			setup: func(c *Channel) func() {
				c.Hangup()
				return c.Hangup
			},
			mustNot: all,
		},
		{
			name:   "Cancel of a parked receiver",
			limits: big,
			setup: func(c *Channel) func() {
				w, _ := receive(c, false)
				return func() { w.Cancel() }
			},
			mustNot: all,
		},
		{
			name:   "Stats, Limits, Opened, Released, CountTruncated",
			limits: big,
			setup: func(c *Channel) func() {
				return func() {
					c.Stats()
					c.Limits()
					c.Opened(true, true)
					c.Released(true, true, true)
					c.CountTruncated()
				}
			},
			mustNot: all,
		},
		{
			// The parked sender was all that kept the channel from being
			// writable: canceling it makes a one-byte send possible.
			name:   "Cancel of the head parked sender makes the channel writable",
			limits: Limits{MaxBytes: 4, MaxMsgs: 10},
			setup: func(c *Channel) func() {
				send(c, "abc", false)
				w, _ := send(c, "defg", false)
				return func() { w.Cancel() }
			},
			mustWake: Writable, mustNot: HangUp,
		},
		{
			// Hung up with a message left: Readable and Writable are set
			// already, and taking the last message raises HangUp.
			name:   "Receive of the last message after hangup",
			limits: big,
			setup: func(c *Channel) func() {
				send(c, "a", false)
				c.Hangup()
				return func() { receive(c, false) }
			},
			mustWake: HangUp,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mustWake&tt.mustNot != 0 {
				t.Fatal("bad table: a bit both must and must not wake")
			}
			c := mustNew(t, tt.limits)
			action := tt.setup(c)
			bits := []Readiness{Readable, Writable, HangUp}
			counters := make([]*wakeCounter, len(bits))
			for i, bit := range bits {
				counters[i] = new(wakeCounter)
				c.Poll(c.NewWatch(counters[i].wake), bit)
			}
			before := c.Poll(nil, 0)
			action()
			after := c.Poll(nil, 0)
			for i, bit := range bits {
				n := counters[i].calls()
				switch {
				case tt.mustWake&bit != 0 && n != 1:
					t.Errorf("watch on %v woken %d times, want 1 (readiness %v -> %v)", rs(bit), n, rs(before), rs(after))
				case tt.mustNot&bit != 0 && n != 0:
					t.Errorf("watch on %v woken %d times, want 0 (readiness %v -> %v)", rs(bit), n, rs(before), rs(after))
				case n > 1:
					t.Errorf("watch on %v woken %d times, want at most 1", rs(bit), n)
				}
			}
		})
	}
}

func TestWatchWokenOnceUntilPolledAgain(t *testing.T) {
	c := mustNew(t, big)
	var wc wakeCounter
	w := c.NewWatch(wc.wake)
	if got := c.Poll(w, Readable); got != Writable {
		t.Fatalf("Poll = %v", rs(got))
	}
	c.Poll(w, Readable) // polling twice arms once
	send(c, "a", false)
	send(c, "b", false)
	receive(c, false)
	c.Hangup()
	c.Reopen()
	if n := wc.calls(); n != 1 {
		t.Fatalf("woken %d times before re-arming, want 1", n)
	}
	// Already readable: Poll still arms.
	if got := c.Poll(w, Readable); got&Readable == 0 {
		t.Fatalf("Poll = %v, want Readable", rs(got))
	}
	send(c, "c", false)
	if n := wc.calls(); n != 2 {
		t.Fatalf("woken %d times after re-arming and a send, want 2", n)
	}
	// Interests accumulate while armed: Readable, then Writable.
	c.Poll(w, Readable)
	c.Poll(w, Writable)
	receive(c, false)
	if n := wc.calls(); n != 3 {
		t.Fatalf("woken %d times after arming for Writable and a receive, want 3", n)
	}
	send(c, "d", false)
	if n := wc.calls(); n != 3 {
		t.Fatalf("woken %d times: the receive's wake should have disarmed both interests", n)
	}
	// Interest 0 does not arm.
	c.Poll(w, 0)
	c.Close()
	if n := wc.calls(); n != 3 {
		t.Fatalf("woken %d times after Poll with no interest", n)
	}
}

func TestWatchManyWatchers(t *testing.T) {
	c := mustNew(t, big)
	const n = 10
	counters := make([]wakeCounter, n)
	for i := range counters {
		interest := Readable
		if i%2 == 1 {
			interest = Writable
		}
		c.Poll(c.NewWatch(counters[i].wake), interest)
	}
	send(c, "a", false)
	for i := range counters {
		want := 1 - i%2
		if got := counters[i].calls(); got != want {
			t.Errorf("after Send, watcher %d woken %d times, want %d", i, got, want)
		}
	}
	receive(c, false)
	for i := range counters {
		if got := counters[i].calls(); got != 1 {
			t.Errorf("after Receive, watcher %d woken %d times in all, want 1", i, got)
		}
	}
}

func TestWatchStop(t *testing.T) {
	c := mustNew(t, big)
	var wc wakeCounter
	w := c.NewWatch(wc.wake)
	w.Stop() // stopping an unarmed watch
	c.Poll(w, Readable|Writable|HangUp)
	send(c, "a", false)
	if wc.calls() != 0 {
		t.Fatal("a watch polled after Stop was woken")
	}

	var wc2 wakeCounter
	w2 := c.NewWatch(wc2.wake)
	c.Poll(w2, Readable|Writable|HangUp)
	w2.Stop()
	w2.Stop()
	send(c, "b", false)
	receive(c, false)
	c.Close()
	if wc2.calls() != 0 {
		t.Fatal("a watch stopped while armed was woken")
	}
	// Stopping one watch leaves the others armed.
	c = mustNew(t, big)
	var keep, stop wakeCounter
	wk, ws := c.NewWatch(keep.wake), c.NewWatch(stop.wake)
	c.Poll(ws, Readable)
	c.Poll(wk, Readable)
	ws.Stop()
	send(c, "a", false)
	if keep.calls() != 1 || stop.calls() != 0 {
		t.Fatalf("kept watch woken %d times (want 1), stopped one %d (want 0)", keep.calls(), stop.calls())
	}
}

// Stop's contract, like time.Timer.Stop: a wake that a change has already
// started may still run once after Stop returns, and no later change wakes
// the watch. Here a Send has already decided to wake the watch and is
// completing its waiter (done runs before wakes, without the lock) when
// Stop is called.
func TestWatchStopWhileWakeInFlight(t *testing.T) {
	c := mustNew(t, big)
	var stopped atomic.Bool
	var late atomic.Int32
	w := c.NewWatch(func() {
		if stopped.Load() {
			late.Add(1)
		}
	})
	c.Poll(w, Readable)
	entered, release := make(chan struct{}), make(chan struct{})
	sw := c.NewWaiter(func([]byte, error) {
		close(entered)
		<-release
	})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		c.Send(sw, []byte("a"))
	}()
	select {
	case <-entered:
	case <-time.After(hangTimeout):
		t.Fatal("the send's done was not called")
	}
	noHang(t, "Stop", w.Stop)
	stopped.Store(true)
	close(release)
	select {
	case <-finished:
	case <-time.After(hangTimeout):
		t.Fatal("Send did not return")
	}
	c.Poll(w, Readable) // stopped: does not arm
	send(c, "b", false)
	c.Close()
	if n := late.Load(); n > 1 {
		t.Errorf("wake called %d times after Stop returned, want at most the one in flight", n)
	}
}

// Wake functions run without the lock: one may poll (re-arm) and call
// other methods.
func TestWakeMayCallBack(t *testing.T) {
	c := mustNew(t, Limits{MaxBytes: 100, MaxMsgs: 1})
	var n atomic.Int32
	var w *Watch
	w = c.NewWatch(func() {
		n.Add(1)
		c.Stats()
		c.Poll(w, Readable|Writable)
	})
	c.Poll(w, Readable|Writable)
	noHang(t, "wake calling back", func() {
		send(c, "a", false) // wakes, re-arms
		receive(c, false)   // wakes, re-arms
		send(c, "b", false) // wakes, re-arms
		send(c, "c", false) // parks: no change
		receive(c, false)   // wakes once (admits c: Readable and Writable)
		c.Hangup()          // wakes
	})
	if got := n.Load(); got != 5 {
		t.Errorf("wake called %d times, want 5", got)
	}
}

// No lost wakeup: loops of "Poll; if not ready, wait for the wake" on both
// ends never hang. A hang becomes a failure after hangTimeout.
func TestPollNoLostWakeup(t *testing.T) {
	const n = 3000
	// pollRecv receives n messages, waiting only through Poll and a watch.
	pollRecv := func(t *testing.T, c *Channel) {
		woken := make(chan struct{}, 1)
		w := c.NewWatch(func() {
			select {
			case woken <- struct{}{}:
			default:
			}
		})
		defer w.Stop()
		for i := 0; i < n; {
			if c.Poll(w, Readable)&Readable == 0 {
				select {
				case <-woken:
				case <-time.After(hangTimeout):
					t.Errorf("receiver: lost wakeup at message %d, %+v", i, c.Stats())
					return
				}
				continue
			}
			_, r := receive(c, true)
			res := r.result()
			if res.err != nil || string(res.msg) != strconv.Itoa(i) {
				t.Errorf("receiver: Readable, then got %q, %v; want %d", res.msg, res.err, i)
				return
			}
			i++
		}
	}
	// pollSend sends n messages, waiting only through Poll and a watch.
	pollSend := func(t *testing.T, c *Channel) {
		woken := make(chan struct{}, 1)
		w := c.NewWatch(func() {
			select {
			case woken <- struct{}{}:
			default:
			}
		})
		defer w.Stop()
		for i := 0; i < n; {
			if c.Poll(w, Writable)&Writable == 0 {
				select {
				case <-woken:
				case <-time.After(hangTimeout):
					t.Errorf("sender: lost wakeup at message %d, %+v", i, c.Stats())
					return
				}
				continue
			}
			// A lone sender, limited by count only: Writable means a
			// send is admitted.
			if _, r := send(c, strconv.Itoa(i), true); r.result().err != nil {
				t.Errorf("sender: Writable, then Send got %v", r.result().err)
				return
			}
			i++
		}
	}
	ctxSend := func(t *testing.T, c *Channel) {
		for i := range n {
			if err := c.sendContext(t.Context(), []byte(strconv.Itoa(i))); err != nil {
				t.Errorf("SendContext: %v", err)
				return
			}
		}
	}
	ctxRecv := func(t *testing.T, c *Channel) {
		for i := range n {
			m, err := c.receiveContext(t.Context())
			if err != nil || string(m) != strconv.Itoa(i) {
				t.Errorf("ReceiveContext = %q, %v; want %d", m, err, i)
				return
			}
		}
	}
	tests := []struct {
		name       string
		sendr, rcv func(*testing.T, *Channel)
	}{
		{"poll sender, poll receiver", pollSend, pollRecv},
		{"blocking sender, poll receiver", ctxSend, pollRecv},
		{"poll sender, blocking receiver", pollSend, ctxRecv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, Limits{MaxBytes: 1 << 20, MaxMsgs: 2})
			var wg sync.WaitGroup
			wg.Go(func() { tt.sendr(t, c) })
			wg.Go(func() { tt.rcv(t, c) })
			wg.Wait()
			if s := c.Stats(); !t.Failed() && (s.Sent != n || s.Received != n || s.Messages != 0) {
				t.Errorf("Stats = %+v", s)
			}
		})
	}
}

// A poller waiting for end of file: hangup wakes it, and so does close.
func TestPollWakesOnHangupAndClose(t *testing.T) {
	for _, end := range []string{"hangup", "close"} {
		t.Run(end, func(t *testing.T) {
			c := mustNew(t, big)
			woken := make(chan struct{}, 1)
			w := c.NewWatch(func() { woken <- struct{}{} })
			if c.Poll(w, Readable|HangUp)&Readable != 0 {
				t.Fatal("empty channel readable")
			}
			go func() {
				if end == "hangup" {
					c.Hangup()
				} else {
					c.Close()
				}
			}()
			select {
			case <-woken:
			case <-time.After(hangTimeout):
				t.Fatal("not woken")
			}
			if got := c.Poll(nil, 0); got != Readable|Writable|HangUp {
				t.Errorf("Poll after %s = %v", end, rs(got))
			}
		})
	}
}

// Wake functions may call back into the channel (doc.go, Locking), so a
// wake may stop its own watch, or re-arm it and then do something that
// wakes it again.
func TestWakeReentry(t *testing.T) {
	t.Run("wake stops its own watch", func(t *testing.T) {
		c := mustNew(t, big)
		var w *Watch
		var calls atomic.Int32
		w = c.NewWatch(func() {
			calls.Add(1)
			w.Stop()
		})
		c.Poll(w, Readable)
		noHang(t, "Send waking a watch whose wake calls Stop", func() { send(c, "a", false) })
		c.Poll(w, Readable) // stopped: does not arm
		send(c, "b", false)
		if n := calls.Load(); n != 1 {
			t.Errorf("wake called %d times, want 1", n)
		}
	})
	t.Run("wake re-arms, then sends", func(t *testing.T) {
		// A poll-driven writer woken when there is room: it re-arms and
		// writes, and that write wakes its (re-armed) watch again.
		c := mustNew(t, Limits{MaxBytes: 100, MaxMsgs: 1})
		send(c, "a", false)
		var w *Watch
		var calls atomic.Int32
		w = c.NewWatch(func() {
			if calls.Add(1) == 1 {
				c.Poll(w, Readable|Writable)
				send(c, "b", true)
			}
		})
		c.Poll(w, Writable)
		noHang(t, "Receive waking a watch whose wake re-arms and sends", func() { receive(c, false) })
		if n := calls.Load(); n != 2 {
			t.Errorf("wake called %d times, want 2 (the receive, then the send)", n)
		}
		if s := c.Stats(); s.Messages != 1 || s.Sent != 2 {
			t.Errorf("Stats = %+v", s)
		}
	})
	t.Run("wake re-arms while another goroutine stops the watch", func(t *testing.T) {
		for round := range 1000 {
			c := mustNew(t, big)
			var w *Watch
			w = c.NewWatch(func() {
				runtime.Gosched()
				c.Poll(w, Readable)
			})
			c.Poll(w, Readable)
			var wg sync.WaitGroup
			wg.Go(func() { send(c, "a", false) })
			wg.Go(func() {
				runtime.Gosched()
				w.Stop()
			})
			noHang(t, fmt.Sprintf("round %d: Send and Stop", round), wg.Wait)
		}
	})
}
