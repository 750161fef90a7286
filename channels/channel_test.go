package channels

import (
	"errors"
	"io"
	"testing"
)

// step is one operation of a scenario run by runScenario, in the test
// goroutine. Every completion happens inside some step's call, so after each
// step the scenario knows exactly which done functions must have been called.
type step struct {
	op        string // send, recv, trysend, tryrecv, cancel, flush, close, limits, hangup, reopen
	msg       string // send: the message
	nonblock  bool   // send, recv
	precancel bool   // send, recv: Cancel the waiter before starting the op
	parks     bool   // send, recv: the call itself does not complete it
	want      string // recv: the message done receives; tryrecv: the message returned
	wantErr   error  // send, recv: done's error; trysend, tryrecv, limits: the error returned
	settles   []int  // earlier parked steps this step completes
	target    int    // cancel: the step whose waiter is canceled
	wantOK    bool   // cancel: Cancel's result
	limits    Limits // limits: the new limits
	wantN     int    // flush, close: the count returned
}

// runScenario runs steps on a new channel. After every step it checks every
// waiter started so far: a canceled waiter's done was never called; a parked
// one's was not called until a step that lists it in settles, then exactly
// once with the wanted result; any other's exactly once, by its own call.
func runScenario(t *testing.T, l Limits, steps []step) *Channel {
	t.Helper()
	c := mustNew(t, l)
	recs := make([]*recorder, len(steps))
	waiters := make([]*Waiter, len(steps))
	settled := make([]bool, len(steps))
	canceled := make([]bool, len(steps))
	for i, s := range steps {
		switch s.op {
		case "send", "recv":
			recs[i] = newRecorder()
			waiters[i] = c.NewWaiter(recs[i].done)
			if s.precancel {
				if !waiters[i].Cancel() {
					t.Fatalf("step %d: Cancel before %s = false, want true", i, s.op)
				}
				canceled[i] = true
			}
			switch {
			case s.nonblock && s.precancel:
				// Nothing to try: a canceled waiter does nothing.
			case s.nonblock && s.op == "send":
				waiters[i].Cancel()
				recs[i].done(nil, c.TrySend([]byte(s.msg)))
			case s.nonblock:
				waiters[i].Cancel()
				recs[i].done(c.TryReceive())
			case s.op == "send":
				c.Send(waiters[i], []byte(s.msg))
			default:
				c.Receive(waiters[i])
			}
		case "trysend":
			if err := c.TrySend([]byte(s.msg)); err != s.wantErr {
				t.Fatalf("step %d: TrySend(%q) = %v, want %v", i, s.msg, err, s.wantErr)
			}
		case "tryrecv":
			m, err := c.TryReceive()
			if err != s.wantErr || (err == nil && string(m) != s.want) || (err != nil && m != nil) {
				t.Fatalf("step %d: TryReceive() = %q, %v; want %q, %v", i, m, err, s.want, s.wantErr)
			}
		case "cancel":
			if got := waiters[s.target].Cancel(); got != s.wantOK {
				t.Fatalf("step %d: Cancel of step %d = %v, want %v", i, s.target, got, s.wantOK)
			}
			if s.wantOK {
				canceled[s.target] = true
			}
		case "flush":
			if got := c.Flush(); got != s.wantN {
				t.Fatalf("step %d: Flush = %d, want %d", i, got, s.wantN)
			}
		case "close":
			if got := c.Close(); got != s.wantN {
				t.Fatalf("step %d: Close = %d, want %d", i, got, s.wantN)
			}
		case "limits":
			if err := c.SetLimits(s.limits); !errors.Is(err, s.wantErr) {
				t.Fatalf("step %d: SetLimits(%+v) = %v, want %v", i, s.limits, err, s.wantErr)
			}
		case "hangup":
			c.Hangup()
		case "reopen":
			c.Reopen()
		default:
			t.Fatalf("step %d: bad op %q", i, s.op)
		}
		for _, j := range s.settles {
			if !steps[j].parks {
				t.Fatalf("step %d settles step %d, which does not park", i, j)
			}
			settled[j] = true
		}
		for j := 0; j <= i; j++ {
			if recs[j] != nil {
				checkStep(t, i, j, steps[j], recs[j], canceled[j] || (steps[j].parks && !settled[j]))
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	return c
}

func checkStep(t *testing.T, after, j int, s step, r *recorder, pending bool) {
	t.Helper()
	calls := r.count()
	if pending {
		if calls != 0 {
			res := r.result()
			t.Errorf("after step %d: step %d (%s %q) done called %d times (%q, %v), want not yet",
				after, j, s.op, s.msg, calls, res.msg, res.err)
		}
		return
	}
	if calls != 1 {
		t.Errorf("after step %d: step %d (%s %q) done called %d times, want 1", after, j, s.op, s.msg, calls)
		return
	}
	res := r.result()
	if !errors.Is(res.err, s.wantErr) {
		t.Errorf("after step %d: step %d (%s %q) err = %v, want %v", after, j, s.op, s.msg, res.err, s.wantErr)
	}
	switch {
	case s.op == "send" && res.msg != nil:
		t.Errorf("after step %d: step %d (send %q) done got message %q, want nil", after, j, s.msg, res.msg)
	case s.op == "recv" && s.wantErr == nil && string(res.msg) != s.want:
		t.Errorf("after step %d: step %d (recv) got %q, want %q", after, j, res.msg, s.want)
	case s.op == "recv" && s.wantErr != nil && res.msg != nil:
		t.Errorf("after step %d: step %d (recv) got %q with error %v, want no message", after, j, res.msg, res.err)
	}
}

var big = Limits{MaxBytes: 1 << 20, MaxMsgs: 1 << 20}

func TestScenarios(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		steps  []step
		want   counts
	}{
		// Admission and capacity.
		{
			name:   "admission by bytes",
			limits: Limits{MaxBytes: 10, MaxMsgs: 100},
			steps: []step{
				{op: "send", msg: "aaaa"},
				{op: "send", msg: "bbbb"},
				{op: "send", msg: "cc"}, // exactly MaxBytes
				{op: "send", msg: "d", nonblock: true, wantErr: ErrWouldBlock},
				{op: "recv", want: "aaaa"},
				{op: "send", msg: "eeee", nonblock: true},
				{op: "send", msg: "f", nonblock: true, wantErr: ErrWouldBlock},
			},
			want: counts{Messages: 3, Bytes: 10, Sent: 4, Received: 1},
		},
		{
			name:   "admission by count",
			limits: Limits{MaxBytes: 1000, MaxMsgs: 2},
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "b"},
				{op: "send", msg: "c", nonblock: true, wantErr: ErrWouldBlock},
				{op: "recv", want: "a"},
				{op: "send", msg: "c", nonblock: true},
				{op: "send", msg: "d", nonblock: true, wantErr: ErrWouldBlock},
			},
			want: counts{Messages: 2, Bytes: 2, Sent: 3, Received: 1},
		},
		{
			name:   "a message larger than MaxBytes is admitted when the queue is empty",
			limits: Limits{MaxBytes: 4, MaxMsgs: 10},
			steps: []step{
				{op: "send", msg: "0123456789", nonblock: true},
				{op: "send", msg: "x", nonblock: true, wantErr: ErrWouldBlock},
				{op: "recv", want: "0123456789"},
				{op: "send", msg: "x", nonblock: true},
			},
			want: counts{Messages: 1, Bytes: 1, Sent: 2, Received: 1},
		},
		{
			name:   "a message larger than MaxBytes waits for the queue to empty",
			limits: Limits{MaxBytes: 4, MaxMsgs: 10},
			steps: []step{
				{op: "send", msg: "ab"},
				{op: "send", msg: "0123456789", parks: true},
				{op: "recv", want: "ab", settles: []int{1}},
				{op: "recv", want: "0123456789"},
			},
			want: counts{Sent: 2, Received: 2},
		},
		{
			name:   "FIFO order",
			limits: big,
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "bb"},
				{op: "send", msg: "ccc"},
				{op: "recv", want: "a"},
				{op: "recv", want: "bb"},
				{op: "send", msg: "dddd"},
				{op: "recv", want: "ccc"},
				{op: "recv", want: "dddd"},
				{op: "recv", nonblock: true, wantErr: ErrWouldBlock},
			},
			want: counts{Sent: 4, Received: 4},
		},
		{
			name:   "non-blocking receive on an empty queue",
			limits: big,
			steps: []step{
				{op: "recv", nonblock: true, wantErr: ErrWouldBlock},
			},
			want: counts{},
		},
		{
			name:   "non-blocking send to a full queue",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			steps: []step{
				{op: "send", msg: "a", nonblock: true},
				{op: "send", msg: "b", nonblock: true, wantErr: ErrWouldBlock},
			},
			want: counts{Messages: 1, Bytes: 1, Sent: 1},
		},
		{
			name:   "empty message",
			limits: Limits{MaxBytes: 10, MaxMsgs: 10},
			steps: []step{
				{op: "send", msg: "", wantErr: ErrEmptyMessage},
				{op: "send", msg: "", nonblock: true, wantErr: ErrEmptyMessage},
				{op: "recv", parks: true, want: "x"},
				{op: "send", msg: "", wantErr: ErrEmptyMessage}, // not handed to the receiver
				{op: "send", msg: "x", settles: []int{2}},
			},
			want: counts{Sent: 1, Received: 1},
		},
		{
			name:   "empty message to a full queue fails at once",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "", wantErr: ErrEmptyMessage},
			},
			want: counts{Messages: 1, Bytes: 1, Sent: 1},
		},
		{
			name:   "SetLimits growing admits parked senders in order",
			limits: Limits{MaxBytes: 100, MaxMsgs: 2},
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "b"},
				{op: "send", msg: "c", parks: true},
				{op: "send", msg: "d", parks: true},
				{op: "limits", limits: Limits{MaxBytes: 100, MaxMsgs: 3}, settles: []int{2}},
				{op: "limits", limits: Limits{MaxBytes: 100, MaxMsgs: 4}, settles: []int{3}},
				{op: "recv", want: "a"},
				{op: "recv", want: "b"},
				{op: "recv", want: "c"},
				{op: "recv", want: "d"},
			},
			want: counts{Sent: 4, Received: 4},
		},
		{
			name:   "SetLimits admits as many parked senders as now fit",
			limits: Limits{MaxBytes: 2, MaxMsgs: 100},
			steps: []step{
				{op: "send", msg: "aa"},
				{op: "send", msg: "bb", parks: true},
				{op: "send", msg: "cc", parks: true},
				{op: "send", msg: "dd", parks: true},
				{op: "limits", limits: Limits{MaxBytes: 6, MaxMsgs: 100}, settles: []int{1, 2}},
			},
			want: counts{Messages: 3, Bytes: 6, BlockedWriters: 1, Sent: 3},
		},
		{
			name:   "SetLimits shrinking keeps queued messages",
			limits: big,
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "b"},
				{op: "send", msg: "c"},
				{op: "limits", limits: Limits{MaxBytes: 1, MaxMsgs: 1}},
				{op: "send", msg: "d", nonblock: true, wantErr: ErrWouldBlock},
				{op: "recv", want: "a"},
				{op: "recv", want: "b"},
				{op: "send", msg: "d", nonblock: true, wantErr: ErrWouldBlock},
				{op: "recv", want: "c"},
				{op: "send", msg: "d", nonblock: true},
			},
			want: counts{Messages: 1, Bytes: 1, Sent: 4, Received: 3},
		},
		{
			name:   "SetLimits with bad limits changes nothing",
			limits: Limits{MaxBytes: 100, MaxMsgs: 1},
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "b", parks: true},
				{op: "limits", limits: Limits{MaxBytes: 100, MaxMsgs: 0}, wantErr: ErrBadLimits},
				{op: "send", msg: "c", nonblock: true, wantErr: ErrWouldBlock},
			},
			want: counts{Messages: 1, Bytes: 1, BlockedWriters: 1, Sent: 1},
		},
		{
			name:   "Flush discards, returns the count and admits parked senders",
			limits: Limits{MaxBytes: 100, MaxMsgs: 2},
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "b"},
				{op: "send", msg: "c", parks: true},
				{op: "send", msg: "d", parks: true},
				{op: "send", msg: "e", parks: true},
				{op: "flush", wantN: 2, settles: []int{2, 3}},
				{op: "recv", want: "c", settles: []int{4}},
				{op: "recv", want: "d"},
				{op: "recv", want: "e"},
			},
			want: counts{Sent: 5, Received: 3},
		},
		{
			name:   "Flush admits an oversized parked sender into the emptied queue",
			limits: Limits{MaxBytes: 4, MaxMsgs: 100},
			steps: []step{
				{op: "send", msg: "abc"},
				{op: "send", msg: "defgh", parks: true},
				{op: "send", msg: "ij", parks: true},
				{op: "flush", wantN: 1, settles: []int{1}},
				{op: "recv", want: "defgh", settles: []int{2}},
				{op: "recv", want: "ij"},
			},
			want: counts{Sent: 3, Received: 2},
		},
		{
			name:   "Flush of an empty queue",
			limits: big,
			steps: []step{
				{op: "flush", wantN: 0},
				{op: "recv", parks: true},
				{op: "flush", wantN: 0}, // a parked receiver stays parked
			},
			want: counts{BlockedReaders: 1},
		},

		// Parking and completion.
		{
			name:   "hand-off to a parked receiver counts sent and received",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			steps: []step{
				{op: "recv", parks: true, want: "xyz"},
				{op: "recv", parks: true},
				{op: "send", msg: "xyz", nonblock: true, settles: []int{0}},
			},
			want: counts{BlockedReaders: 1, Sent: 1, Received: 1},
		},
		{
			name:   "parked receivers are served in the order they parked",
			limits: big,
			steps: []step{
				{op: "recv", parks: true, want: "x"},
				{op: "recv", parks: true, want: "y"},
				{op: "recv", parks: true, want: "z"},
				{op: "send", msg: "x", settles: []int{0}},
				{op: "send", msg: "y", settles: []int{1}},
				{op: "send", msg: "z", settles: []int{2}},
			},
			want: counts{Sent: 3, Received: 3},
		},
		{
			name:   "parked senders are admitted in order as receives free room",
			limits: Limits{MaxBytes: 100, MaxMsgs: 1},
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "b", parks: true},
				{op: "send", msg: "c", parks: true},
				{op: "recv", want: "a", settles: []int{1}},
				{op: "recv", want: "b", settles: []int{2}},
				{op: "recv", want: "c"},
			},
			want: counts{Sent: 3, Received: 3},
		},
		{
			name:   "a new Send never overtakes parked senders",
			limits: Limits{MaxBytes: 4, MaxMsgs: 10},
			steps: []step{
				{op: "send", msg: "abc"},
				{op: "send", msg: "defg", parks: true},
				{op: "send", msg: "h", nonblock: true, wantErr: ErrWouldBlock}, // would fit by itself
				{op: "send", msg: "i", parks: true},
				{op: "recv", want: "abc", settles: []int{1}},
				{op: "recv", want: "defg", settles: []int{3}},
				{op: "recv", want: "i"},
			},
			want: counts{Sent: 3, Received: 3},
		},

		// TrySend and TryReceive.
		{
			name:   "TrySend and TryReceive",
			limits: Limits{MaxBytes: 100, MaxMsgs: 2},
			steps: []step{
				{op: "tryrecv", wantErr: ErrWouldBlock},
				{op: "trysend", msg: "a"},
				{op: "trysend", msg: "b"},
				{op: "trysend", msg: "c", wantErr: ErrWouldBlock},
				{op: "trysend", msg: "", wantErr: ErrEmptyMessage},
				{op: "tryrecv", want: "a"},
				{op: "tryrecv", want: "b"},
				{op: "tryrecv", wantErr: ErrWouldBlock},
			},
			want: counts{Sent: 2, Received: 2},
		},
		{
			name:   "TrySend hands off to a parked receiver",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			steps: []step{
				{op: "recv", parks: true, want: "abc"},
				{op: "trysend", msg: "abc", settles: []int{0}},
			},
			want: counts{Sent: 1, Received: 1},
		},
		{
			name:   "TrySend does not overtake parked senders",
			limits: Limits{MaxBytes: 4, MaxMsgs: 10},
			steps: []step{
				{op: "send", msg: "abc"},
				{op: "send", msg: "defg", parks: true},
				{op: "trysend", msg: "h", wantErr: ErrWouldBlock},
				{op: "tryrecv", want: "abc", settles: []int{1}},
				{op: "tryrecv", want: "defg"},
			},
			want: counts{Sent: 2, Received: 2},
		},
		{
			name:   "TryReceive admits parked senders",
			limits: Limits{MaxBytes: 100, MaxMsgs: 1},
			steps: []step{
				{op: "trysend", msg: "a"},
				{op: "send", msg: "b", parks: true},
				{op: "tryrecv", want: "a", settles: []int{1}},
				{op: "tryrecv", want: "b"},
			},
			want: counts{Sent: 2, Received: 2},
		},
		{
			name:   "TrySend and TryReceive after hangup and close",
			limits: big,
			steps: []step{
				{op: "trysend", msg: "a"},
				{op: "hangup"},
				{op: "trysend", msg: "b", wantErr: ErrHungUp},
				{op: "tryrecv", want: "a"},
				{op: "tryrecv", wantErr: io.EOF},
				{op: "close"},
				{op: "trysend", msg: "b", wantErr: ErrClosed},
				{op: "tryrecv", wantErr: io.EOF},
			},
			want: counts{Sent: 1, Received: 1, HungUp: true, Closed: true},
		},

		// Cancel.
		{
			name:   "Cancel before Send: nothing is sent",
			limits: big,
			steps: []step{
				{op: "send", msg: "a", precancel: true},
				{op: "recv", nonblock: true, wantErr: ErrWouldBlock},
			},
			want: counts{},
		},
		{
			name:   "Cancel before Send to a parked receiver: the receiver stays parked",
			limits: big,
			steps: []step{
				{op: "recv", parks: true, want: "b"},
				{op: "send", msg: "a", precancel: true},
				{op: "send", msg: "b", settles: []int{0}},
			},
			want: counts{Sent: 1, Received: 1},
		},
		{
			name:   "Cancel before Receive: nothing is taken",
			limits: big,
			steps: []step{
				{op: "send", msg: "a"},
				{op: "recv", precancel: true},
				{op: "recv", precancel: true, nonblock: true},
				{op: "recv", want: "a"},
			},
			want: counts{Sent: 1, Received: 1},
		},
		{
			name:   "Cancel before Receive on an empty queue: it does not park",
			limits: big,
			steps: []step{
				{op: "recv", precancel: true},
				{op: "send", msg: "a"},
			},
			want: counts{Messages: 1, Bytes: 1, Sent: 1},
		},
		{
			name:   "a canceled parked receiver takes nothing",
			limits: big,
			steps: []step{
				{op: "recv", parks: true},
				{op: "recv", parks: true, want: "a"},
				{op: "cancel", target: 0, wantOK: true},
				{op: "send", msg: "a", settles: []int{1}},
				{op: "send", msg: "b"},
			},
			want: counts{Messages: 1, Bytes: 1, Sent: 2, Received: 1},
		},
		{
			name:   "a canceled parked sender's message is never delivered",
			limits: Limits{MaxBytes: 100, MaxMsgs: 1},
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "b", parks: true},
				{op: "cancel", target: 1, wantOK: true},
				{op: "recv", want: "a"},
				{op: "recv", nonblock: true, wantErr: ErrWouldBlock},
			},
			want: counts{Sent: 1, Received: 1},
		},
		{
			name:   "canceling the head parked sender lets the next one in if it fits",
			limits: Limits{MaxBytes: 4, MaxMsgs: 10},
			steps: []step{
				{op: "send", msg: "abc"},
				{op: "send", msg: "defg", parks: true},
				{op: "send", msg: "h", parks: true},
				{op: "send", msg: "ij", parks: true},
				{op: "cancel", target: 1, wantOK: true, settles: []int{2}},
				{op: "recv", want: "abc", settles: []int{3}},
				{op: "recv", want: "h"},
				{op: "recv", want: "ij"},
			},
			want: counts{Sent: 3, Received: 3},
		},
		{
			name:   "canceling a middle parked sender keeps the others in order",
			limits: Limits{MaxBytes: 100, MaxMsgs: 1},
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "b", parks: true},
				{op: "send", msg: "c", parks: true},
				{op: "send", msg: "d", parks: true},
				{op: "cancel", target: 2, wantOK: true},
				{op: "recv", want: "a", settles: []int{1}},
				{op: "recv", want: "b", settles: []int{3}},
				{op: "recv", want: "d"},
			},
			want: counts{Sent: 3, Received: 3},
		},
		{
			name:   "Cancel after completion reports false",
			limits: big,
			steps: []step{
				{op: "send", msg: "a"},
				{op: "cancel", target: 0, wantOK: false},
				{op: "recv", want: "a"},
				{op: "cancel", target: 2, wantOK: false},
				{op: "recv", parks: true, want: "b"},
				{op: "send", msg: "b", settles: []int{4}},
				{op: "cancel", target: 4, wantOK: false},
				{op: "cancel", target: 5, wantOK: false},
				{op: "recv", nonblock: true, wantErr: ErrWouldBlock},
				{op: "cancel", target: 8, wantOK: false},
			},
			want: counts{Sent: 2, Received: 2},
		},
		{
			name:   "a second Cancel reports false",
			limits: big,
			steps: []step{
				{op: "recv", parks: true},
				{op: "cancel", target: 0, wantOK: true},
				{op: "cancel", target: 0, wantOK: false},
			},
			want: counts{},
		},

		// Hangup and Reopen.
		{
			name:   "hangup fails parked and later sends; receivers drain then read EOF",
			limits: Limits{MaxBytes: 100, MaxMsgs: 2},
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "b"},
				{op: "send", msg: "c", parks: true, wantErr: ErrHungUp},
				{op: "hangup", settles: []int{2}},
				{op: "send", msg: "d", wantErr: ErrHungUp},
				{op: "send", msg: "d", nonblock: true, wantErr: ErrHungUp},
				{op: "recv", want: "a"},
				{op: "recv", want: "b"},
				{op: "recv", wantErr: io.EOF},
				{op: "recv", nonblock: true, wantErr: io.EOF},
			},
			want: counts{Sent: 2, Received: 2, HungUp: true},
		},
		{
			name:   "hangup gives parked receivers EOF",
			limits: big,
			steps: []step{
				{op: "recv", parks: true, wantErr: io.EOF},
				{op: "recv", parks: true, wantErr: io.EOF},
				{op: "hangup", settles: []int{0, 1}},
				{op: "recv", wantErr: io.EOF},
			},
			want: counts{HungUp: true},
		},
		{
			name:   "Reopen restores normal behaviour",
			limits: big,
			steps: []step{
				{op: "hangup"},
				{op: "send", msg: "a", wantErr: ErrHungUp},
				{op: "reopen"},
				{op: "send", msg: "b"},
				{op: "recv", want: "b"},
				{op: "recv", nonblock: true, wantErr: ErrWouldBlock},
				{op: "recv", parks: true, want: "c"},
				{op: "send", msg: "c", settles: []int{6}},
			},
			want: counts{Sent: 2, Received: 2},
		},
		{
			name:   "Reopen before the queue is drained",
			limits: big,
			steps: []step{
				{op: "send", msg: "a"},
				{op: "hangup"},
				{op: "hangup"},
				{op: "reopen"},
				{op: "recv", want: "a"},
				{op: "recv", parks: true},
			},
			want: counts{BlockedReaders: 1, Sent: 1, Received: 1},
		},

		// Close.
		{
			name:   "Close discards the queue; parked and later sends fail; receives read EOF",
			limits: Limits{MaxBytes: 100, MaxMsgs: 2},
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "b"},
				{op: "send", msg: "c", parks: true, wantErr: ErrClosed},
				{op: "close", wantN: 2, settles: []int{2}},
				{op: "send", msg: "d", wantErr: ErrClosed},
				{op: "send", msg: "d", nonblock: true, wantErr: ErrClosed},
				{op: "recv", wantErr: io.EOF},
				{op: "recv", nonblock: true, wantErr: io.EOF},
				{op: "close", wantN: 0},
			},
			want: counts{Sent: 2, Closed: true},
		},
		{
			name:   "Close gives parked receivers EOF",
			limits: big,
			steps: []step{
				{op: "recv", parks: true, wantErr: io.EOF},
				{op: "recv", parks: true, wantErr: io.EOF},
				{op: "close", wantN: 0, settles: []int{0, 1}},
			},
			want: counts{Closed: true},
		},
		{
			name:   "Close after hangup discards what was left to drain",
			limits: big,
			steps: []step{
				{op: "send", msg: "a"},
				{op: "send", msg: "b"},
				{op: "hangup"},
				{op: "recv", want: "a"},
				{op: "close", wantN: 1},
				{op: "recv", wantErr: io.EOF},
				{op: "send", msg: "c", wantErr: ErrClosed},
			},
			want: counts{Sent: 2, Received: 1, HungUp: true, Closed: true},
		},
		{
			name:   "hangup, reopen and flush after Close change nothing",
			limits: big,
			steps: []step{
				{op: "close"},
				{op: "hangup"},
				{op: "reopen"},
				{op: "flush"},
				{op: "send", msg: "a", wantErr: ErrClosed},
				{op: "recv", wantErr: io.EOF},
			},
			want: counts{Closed: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := runScenario(t, tt.limits, tt.steps)
			if got := countsOf(c.Stats()); got != tt.want {
				t.Errorf("Stats:\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestNewBadLimits(t *testing.T) {
	tests := []struct {
		limits Limits
		ok     bool
	}{
		{Limits{MaxBytes: 1, MaxMsgs: 1}, true},
		{Limits{MaxBytes: 1 << 40, MaxMsgs: 1 << 40}, true},
		{Limits{MaxBytes: 0, MaxMsgs: 1}, false},
		{Limits{MaxBytes: 1, MaxMsgs: 0}, false},
		{Limits{}, false},
		{Limits{MaxBytes: -1, MaxMsgs: 10}, false},
		{Limits{MaxBytes: 10, MaxMsgs: -1}, false},
	}
	for _, tt := range tests {
		c, err := New(tt.limits)
		if tt.ok {
			if err != nil || c == nil {
				t.Errorf("New(%+v) = %v, %v; want a channel", tt.limits, c, err)
				continue
			}
			if got := c.Limits(); got != tt.limits {
				t.Errorf("New(%+v).Limits() = %+v", tt.limits, got)
			}
			if got := c.Stats().Limits; got != tt.limits {
				t.Errorf("New(%+v).Stats().Limits = %+v", tt.limits, got)
			}
			continue
		}
		if !errors.Is(err, ErrBadLimits) || c != nil {
			t.Errorf("New(%+v) = %v, %v; want nil, ErrBadLimits", tt.limits, c, err)
		}

		old := Limits{MaxBytes: 7, MaxMsgs: 3}
		c = mustNew(t, old)
		if err := c.SetLimits(tt.limits); !errors.Is(err, ErrBadLimits) {
			t.Errorf("SetLimits(%+v) = %v, want ErrBadLimits", tt.limits, err)
		}
		if got := c.Limits(); got != old {
			t.Errorf("after a failed SetLimits(%+v), Limits() = %+v, want %+v", tt.limits, got, old)
		}
	}
}

func TestSetLimitsReadBack(t *testing.T) {
	c := mustNew(t, big)
	l := Limits{MaxBytes: 123, MaxMsgs: 4}
	if err := c.SetLimits(l); err != nil {
		t.Fatal(err)
	}
	if got := c.Limits(); got != l {
		t.Errorf("Limits() = %+v, want %+v", got, l)
	}
	if got := c.Stats().Limits; got != l {
		t.Errorf("Stats().Limits = %+v, want %+v", got, l)
	}
}

func TestStatsHandles(t *testing.T) {
	c := mustNew(t, big)
	type hs struct{ readers, writers, truncated int64 }
	get := func() hs {
		s := c.Stats()
		return hs{s.Readers, s.Writers, int64(s.Truncated)}
	}
	steps := []struct {
		name string
		do   func()
		want hs
	}{
		{"open read", func() { c.Opened(true, false) }, hs{1, 0, 0}},
		{"open write", func() { c.Opened(false, true) }, hs{1, 1, 0}},
		{"open read-write", func() { c.Opened(true, true) }, hs{2, 2, 0}},
		{"open neither", func() { c.Opened(false, false) }, hs{2, 2, 0}},
		{"release read, truncated", func() { c.Released(true, false, true) }, hs{1, 2, 1}},
		{"count truncated", func() { c.CountTruncated() }, hs{1, 2, 2}},
		{"release read-write", func() { c.Released(true, true, false) }, hs{0, 1, 2}},
		{"release write, truncated", func() { c.Released(false, true, true) }, hs{0, 0, 3}},
		{"close keeps the counters", func() { c.Close() }, hs{0, 0, 3}},
	}
	for _, s := range steps {
		s.do()
		if got := get(); got != s.want {
			t.Fatalf("after %s: readers, writers, truncated = %+v, want %+v", s.name, got, s.want)
		}
	}
}

func TestStatsBlocked(t *testing.T) {
	c := mustNew(t, Limits{MaxBytes: 100, MaxMsgs: 1})
	check := func(what string, readers, writers int64) {
		t.Helper()
		s := c.Stats()
		if s.BlockedReaders != readers || s.BlockedWriters != writers {
			t.Fatalf("%s: BlockedReaders, BlockedWriters = %d, %d; want %d, %d",
				what, s.BlockedReaders, s.BlockedWriters, readers, writers)
		}
	}
	r1, _ := receive(c, false)
	receive(c, false)
	check("two receivers parked", 2, 0)
	r1.Cancel()
	check("one canceled", 1, 0)
	send(c, "a", false) // to the parked receiver
	check("handed off", 0, 0)
	send(c, "b", false)
	s1, _ := send(c, "c", false)
	send(c, "d", false)
	check("two senders parked", 0, 2)
	s1.Cancel()
	check("one canceled", 0, 1)
	receive(c, false)
	check("one admitted", 0, 0)
	send(c, "e", false)
	c.Hangup()
	check("hung up", 0, 0)
}
