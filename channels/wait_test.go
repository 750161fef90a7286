package channels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// A parked receiver whose done function starts the next Receive, as a FUSE
// daemon answering one READ and taking the next: done runs without the
// channel's lock, so the chain neither deadlocks nor loses a message.
func TestDoneMayReceiveAgain(t *testing.T) {
	c := mustNew(t, Limits{MaxBytes: 100, MaxMsgs: 1})
	const n = 100
	var got []string
	var gotErr error
	var next func()
	next = func() {
		w := c.NewWaiter(func(msg []byte, err error) {
			if err != nil {
				gotErr = err
				return
			}
			got = append(got, string(msg))
			next()
		})
		c.Receive(w)
	}
	noHang(t, "receive chain", func() {
		next()
		for i := range n {
			_, r := send(c, fmt.Sprint(i), false)
			if res := r.result(); r.count() != 1 || res.err != nil {
				t.Errorf("send %d: done called %d times, err %v; want once, nil", i, r.count(), res.err)
			}
		}
		c.Hangup()
	})
	if len(got) != n {
		t.Fatalf("received %d messages, want %d", len(got), n)
	}
	for i, m := range got {
		if m != fmt.Sprint(i) {
			t.Fatalf("message %d = %q, want %q", i, m, fmt.Sprint(i))
		}
	}
	if gotErr != io.EOF {
		t.Errorf("after hangup the chained receive got %v, want io.EOF", gotErr)
	}
	if s := c.Stats(); s.BlockedReaders != 0 || s.Sent != n || s.Received != n {
		t.Errorf("Stats = %+v", s)
	}
}

// A parked sender whose done function sends the next message: each is
// admitted by a Receive, which calls done without the lock.
func TestDoneMaySendAgain(t *testing.T) {
	c := mustNew(t, Limits{MaxBytes: 100, MaxMsgs: 1})
	const n = 100
	sent := 0
	var next func()
	next = func() {
		if sent == n {
			return
		}
		msg := fmt.Sprint(sent)
		sent++
		w := c.NewWaiter(func(_ []byte, err error) {
			if err != nil {
				t.Errorf("send: %v", err)
				return
			}
			next()
		})
		c.Send(w, []byte(msg))
	}
	noHang(t, "send chain", func() {
		next() // admitted, and its done sends the next, which parks
		for i := range n {
			_, r := receive(c, true)
			res := r.result()
			if r.count() != 1 || res.err != nil || string(res.msg) != fmt.Sprint(i) {
				t.Fatalf("receive %d: done called %d times with %q, %v", i, r.count(), res.msg, res.err)
			}
		}
	})
	if s := c.Stats(); s.Messages != 0 || s.BlockedWriters != 0 || s.Sent != n || s.Received != n {
		t.Errorf("Stats = %+v", s)
	}
}

// Done functions that call every kind of method while other waiters of the
// same settlement are still to be completed.
func TestDoneMayCallAnyMethod(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		setup  func(c *Channel)            // fills the queue, if needed
		inDone func(c *Channel)            // called from the parked waiter's done
		parkOp func(c *Channel, w *Waiter) // parks the waiter
		settle func(c *Channel)            // completes it
	}{
		{
			name:   "receiver's done: Stats, Poll, Limits, SetLimits, Flush",
			limits: big,
			parkOp: func(c *Channel, w *Waiter) { c.Receive(w) },
			inDone: func(c *Channel) {
				c.Stats()
				c.Poll(c.NewWatch(func() {}), Readable)
				_ = c.SetLimits(c.Limits())
				c.Flush()
			},
			settle: func(c *Channel) { send(c, "a", false) },
		},
		{
			name:   "receiver's done on hangup: Reopen, Send, Receive",
			limits: big,
			parkOp: func(c *Channel, w *Waiter) { c.Receive(w) },
			inDone: func(c *Channel) {
				c.Reopen()
				send(c, "b", false)
				receive(c, false)
			},
			settle: func(c *Channel) { c.Hangup() },
		},
		{
			name:   "sender's done on admission: Close",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			setup:  func(c *Channel) { send(c, "a", false) },
			parkOp: func(c *Channel, w *Waiter) { c.Send(w, []byte("b")) },
			inDone: func(c *Channel) { c.Close() },
			settle: func(c *Channel) { receive(c, false) },
		},
		{
			name:   "sender's done on close: Close, Cancel, Opened, Released",
			limits: Limits{MaxBytes: 1, MaxMsgs: 1},
			setup:  func(c *Channel) { send(c, "a", false) },
			parkOp: func(c *Channel, w *Waiter) { c.Send(w, []byte("b")) },
			inDone: func(c *Channel) {
				c.Close()
				c.NewWaiter(func([]byte, error) {}).Cancel()
				c.Opened(true, true)
				c.Released(true, true, true)
				c.CountTruncated()
			},
			settle: func(c *Channel) { c.Close() },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, tt.limits)
			if tt.setup != nil {
				tt.setup(c)
			}
			calls := 0
			w := c.NewWaiter(func([]byte, error) {
				calls++
				tt.inDone(c)
			})
			tt.parkOp(c, w)
			if calls != 0 {
				t.Fatalf("did not park")
			}
			noHang(t, "settle", func() { tt.settle(c) })
			if calls != 1 {
				t.Errorf("done called %d times, want 1", calls)
			}
		})
	}
}

func TestSendContextBlocksUntilRoom(t *testing.T) {
	c := mustNew(t, Limits{MaxBytes: 100, MaxMsgs: 1})
	send(c, "a", false)
	errc := make(chan error, 1)
	go func() { errc <- c.sendContext(context.Background(), []byte("b")) }()
	waitUntil(t, "a parked sender", func() bool { return c.Stats().BlockedWriters == 1 })
	select {
	case err := <-errc:
		t.Fatalf("SendContext returned %v while the queue was full", err)
	default:
	}
	_, r := receive(c, true)
	if res := r.result(); string(res.msg) != "a" {
		t.Fatalf("received %q, want a", res.msg)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("SendContext = %v", err)
		}
	case <-time.After(hangTimeout):
		t.Fatal("SendContext still blocked after a receive made room")
	}
	if got, err := c.receiveContext(context.Background()); err != nil || string(got) != "b" {
		t.Fatalf("ReceiveContext = %q, %v; want b", got, err)
	}
}

func TestReceiveContextBlocksUntilMessage(t *testing.T) {
	c := mustNew(t, big)
	type res struct {
		msg []byte
		err error
	}
	done := make(chan res, 1)
	go func() {
		m, err := c.receiveContext(context.Background())
		done <- res{m, err}
	}()
	waitUntil(t, "a parked receiver", func() bool { return c.Stats().BlockedReaders == 1 })
	select {
	case r := <-done:
		t.Fatalf("ReceiveContext returned %q, %v from an empty queue", r.msg, r.err)
	default:
	}
	if err := c.sendContext(context.Background(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || string(r.msg) != "hello" {
			t.Fatalf("ReceiveContext = %q, %v", r.msg, r.err)
		}
	case <-time.After(hangTimeout):
		t.Fatal("ReceiveContext still blocked after a send")
	}
}

// Canceled while blocked: ctx.Err(), and the operation did nothing.
func TestContextCanceledWhileBlocked(t *testing.T) {
	for _, deadline := range []bool{false, true} {
		name := "cancel"
		if deadline {
			name = "deadline"
		}
		// newCtx returns a context that ends: by trigger, after the op has
		// been seen parked; or by its deadline, whenever that passes (the op
		// has no other way to complete, so the test need not see it park).
		newCtx := func() (ctx context.Context, trigger func(), waitParked bool) {
			if deadline {
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				t.Cleanup(cancel)
				return ctx, func() {}, false
			}
			ctx, cancel := context.WithCancel(context.Background())
			return ctx, cancel, true
		}
		t.Run("receive/"+name, func(t *testing.T) {
			c := mustNew(t, big)
			ctx, trigger, waitParked := newCtx()
			errc := make(chan error, 1)
			go func() {
				m, err := c.receiveContext(ctx)
				if m != nil {
					err = fmt.Errorf("got message %q with %v", m, err)
				}
				errc <- err
			}()
			if waitParked {
				waitUntil(t, "a parked receiver", func() bool { return c.Stats().BlockedReaders == 1 })
			}
			trigger()
			var err error
			select {
			case err = <-errc:
			case <-time.After(hangTimeout):
				t.Fatal("ReceiveContext ignored the canceled context")
			}
			if err == nil || err != ctx.Err() {
				t.Fatalf("ReceiveContext = %v, want ctx.Err() = %v", err, ctx.Err())
			}
			if s := c.Stats(); s.BlockedReaders != 0 {
				t.Fatalf("BlockedReaders = %d after cancel", s.BlockedReaders)
			}
			send(c, "a", false)
			if s := c.Stats(); s.Messages != 1 || s.Received != 0 {
				t.Fatalf("the canceled receive took the message: %+v", s)
			}
			if m, err := c.receiveContext(context.Background()); err != nil || string(m) != "a" {
				t.Fatalf("next ReceiveContext = %q, %v", m, err)
			}
		})
		t.Run("send/"+name, func(t *testing.T) {
			c := mustNew(t, Limits{MaxBytes: 100, MaxMsgs: 1})
			send(c, "a", false)
			ctx, trigger, waitParked := newCtx()
			errc := make(chan error, 1)
			go func() { errc <- c.sendContext(ctx, []byte("b")) }()
			if waitParked {
				waitUntil(t, "a parked sender", func() bool { return c.Stats().BlockedWriters == 1 })
			}
			trigger()
			var err error
			select {
			case err = <-errc:
			case <-time.After(hangTimeout):
				t.Fatal("SendContext ignored the canceled context")
			}
			if err == nil || err != ctx.Err() {
				t.Fatalf("SendContext = %v, want ctx.Err() = %v", err, ctx.Err())
			}
			if s := c.Stats(); s.BlockedWriters != 0 || s.Sent != 1 {
				t.Fatalf("after the canceled send: %+v", s)
			}
			if m, err := c.receiveContext(context.Background()); err != nil || string(m) != "a" {
				t.Fatalf("ReceiveContext = %q, %v", m, err)
			}
			c.Hangup()
			if m, err := c.receiveContext(context.Background()); err != io.EOF {
				t.Fatalf("the canceled send's message was delivered: %q, %v", m, err)
			}
		})
	}
}

// With a context already done, an op that could complete at once may
// either complete or report ctx.Err(); whichever it reports must be true.
func TestContextAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 50 {
		c := mustNew(t, Limits{MaxBytes: 100, MaxMsgs: 1})
		err := c.sendContext(ctx, []byte("a"))
		switch {
		case err == nil:
			if c.Stats().Messages != 1 {
				t.Fatal("SendContext reported success but nothing is queued")
			}
		case errors.Is(err, context.Canceled):
			if s := c.Stats(); s.Messages != 0 || s.Sent != 0 {
				t.Fatalf("SendContext reported %v but sent: %+v", err, s)
			}
			send(c, "a", false)
		default:
			t.Fatalf("SendContext = %v", err)
		}
		m, err := c.receiveContext(ctx)
		switch {
		case err == nil:
			if string(m) != "a" || c.Stats().Messages != 0 {
				t.Fatalf("ReceiveContext = %q with %+v", m, c.Stats())
			}
		case errors.Is(err, context.Canceled):
			if s := c.Stats(); s.Messages != 1 || s.Received != 0 || m != nil {
				t.Fatalf("ReceiveContext reported %v but took something: %q, %+v", err, m, s)
			}
		default:
			t.Fatalf("ReceiveContext = %v", err)
		}
		// Blocking ops with a done context never stay parked.
		c.Flush()
		send(c, "x", false)
		if err := c.sendContext(ctx, []byte("y")); !errors.Is(err, context.Canceled) {
			t.Fatalf("SendContext to a full queue with a done context = %v", err)
		}
		c.Flush()
		if _, err := c.receiveContext(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("ReceiveContext of an empty queue with a done context = %v", err)
		}
		if s := c.Stats(); s.BlockedReaders != 0 || s.BlockedWriters != 0 {
			t.Fatalf("a canceled op stayed parked: %+v", s)
		}
	}
}

func TestContextHangupAndClose(t *testing.T) {
	bg := context.Background()
	t.Run("hangup", func(t *testing.T) {
		c := mustNew(t, Limits{MaxBytes: 100, MaxMsgs: 1})
		send(c, "a", false)
		errc := make(chan error, 1)
		go func() { errc <- c.sendContext(bg, []byte("b")) }()
		waitUntil(t, "a parked sender", func() bool { return c.Stats().BlockedWriters == 1 })
		c.Hangup()
		if err := <-errc; err != ErrHungUp {
			t.Fatalf("parked SendContext = %v, want ErrHungUp", err)
		}
		if err := c.sendContext(bg, []byte("c")); err != ErrHungUp {
			t.Fatalf("SendContext = %v, want ErrHungUp", err)
		}
		if m, err := c.receiveContext(bg); err != nil || string(m) != "a" {
			t.Fatalf("ReceiveContext = %q, %v; want a", m, err)
		}
		if _, err := c.receiveContext(bg); err != io.EOF {
			t.Fatalf("ReceiveContext = %v, want io.EOF", err)
		}
	})
	t.Run("close", func(t *testing.T) {
		c := mustNew(t, big)
		errc := make(chan error, 1)
		go func() {
			_, err := c.receiveContext(bg)
			errc <- err
		}()
		waitUntil(t, "a parked receiver", func() bool { return c.Stats().BlockedReaders == 1 })
		c.Close()
		if err := <-errc; err != io.EOF {
			t.Fatalf("parked ReceiveContext = %v, want io.EOF", err)
		}
		if err := c.sendContext(bg, []byte("c")); err != ErrClosed {
			t.Fatalf("SendContext = %v, want ErrClosed", err)
		}
		if err := c.sendContext(bg, nil); err != ErrClosed {
			t.Fatalf("SendContext(nil) = %v, want ErrClosed", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		c := mustNew(t, big)
		if err := c.sendContext(bg, []byte{}); err != ErrEmptyMessage {
			t.Fatalf("SendContext(empty) = %v, want ErrEmptyMessage", err)
		}
	})
}
