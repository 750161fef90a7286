package channels

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Stress messages carry their sender and sequence number, padded to vary
// the size so that both limits bind.
func stressMsg(sender, seq int, rng *rand.Rand) []byte {
	m := make([]byte, 8+rng.IntN(12))
	binary.BigEndian.PutUint32(m[0:], uint32(sender))
	binary.BigEndian.PutUint32(m[4:], uint32(seq))
	return m
}

func parseStressMsg(t *testing.T, m []byte) (sender, seq int) {
	if len(m) < 8 {
		t.Errorf("malformed message %q", m)
		return -1, -1
	}
	return int(binary.BigEndian.Uint32(m[0:])), int(binary.BigEndian.Uint32(m[4:]))
}

// checkGoroutines waits for the goroutine count to come back to baseline.
func checkGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), baseline,
				buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// Cancel races Send: every message is either received exactly once (its
// done was called) or was canceled (Cancel returned true and done was never
// called), never both, never lost.
func TestCancelRacesSend(t *testing.T) {
	const (
		pairs   = 8
		perPair = 500
		total   = pairs * perPair
	)
	baseline := runtime.NumGoroutine()
	c := mustNew(t, Limits{MaxBytes: 64, MaxMsgs: 4})

	var (
		doneCalls [total]atomic.Int32
		canceled  [total]atomic.Bool
		late      atomic.Int64 // Cancels that found the send complete
		received  [total]atomic.Int32
		settled   sync.WaitGroup // one per message: done or a successful Cancel
	)
	settled.Add(total)
	waiters := make([]*Waiter, total)
	for i := range waiters {
		waiters[i] = c.NewWaiter(func(msg []byte, err error) {
			if msg != nil || err != nil {
				t.Errorf("send %d: done(%q, %v), want (nil, nil)", i, msg, err)
			}
			if doneCalls[i].Add(1) == 1 {
				settled.Done()
			}
		})
	}

	var receivers sync.WaitGroup
	for range 4 {
		receivers.Go(func() {
			for {
				m, err := c.receiveContext(context.Background())
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Errorf("ReceiveContext: %v", err)
					return
				}
				_, seq := parseStressMsg(t, m)
				if seq >= 0 && seq < total {
					received[seq].Add(1)
				}
			}
		})
	}

	var senders sync.WaitGroup
	for p := range pairs {
		ids := make([]int, perPair)
		for k := range ids {
			ids[k] = p*perPair + k
		}
		senders.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			for _, i := range ids {
				c.Send(waiters[i], stressMsg(p, i, rng))
				if rng.IntN(8) == 0 {
					runtime.Gosched()
				}
			}
		})
		senders.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 2))
			for _, i := range ids {
				if rng.IntN(2) == 0 {
					continue
				}
				if waiters[i].Cancel() {
					canceled[i].Store(true)
					settled.Done()
				} else {
					late.Add(1)
				}
				if rng.IntN(8) == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	senders.Wait()
	noHang(t, "settling every send", settled.Wait)
	c.Hangup()
	noHang(t, "receivers reaching EOF", receivers.Wait)

	var nCanceled, nSent int
	for i := range total {
		d, cx, r := doneCalls[i].Load(), canceled[i].Load(), received[i].Load()
		switch {
		case cx && (d != 0 || r != 0):
			t.Errorf("message %d: canceled, yet done called %d times and received %d times", i, d, r)
		case !cx && (d != 1 || r != 1):
			t.Errorf("message %d: done called %d times, received %d times; want 1, 1", i, d, r)
		case cx:
			nCanceled++
		default:
			nSent++
		}
	}
	s := c.Stats()
	if s.Sent != uint64(nSent) || s.Received != uint64(nSent) || s.BlockedWriters != 0 || s.Messages != 0 {
		t.Errorf("Stats = %+v; %d sent, %d canceled", s, nSent, nCanceled)
	}
	t.Logf("%d sent, %d canceled, %d Cancels too late", nSent, nCanceled, late.Load())
	c.Close()
	checkGoroutines(t, baseline)
}

// Cancel races the completion of a parked receiver: the message goes to the
// canceled receiver only if its Cancel failed, and is then not lost.
func TestCancelRacesReceive(t *testing.T) {
	const n = 2000
	c := mustNew(t, big)
	for i := range n {
		r := newRecorder()
		w := c.NewWaiter(r.done)
		c.Receive(w) // parks: the queue is empty
		started := make(chan struct{})
		var ok bool
		cancelDone := make(chan struct{})
		go func() {
			close(started)
			ok = w.Cancel()
			close(cancelDone)
		}()
		<-started
		send(c, "m", false)
		<-cancelDone
		switch {
		case ok && r.count() != 0:
			t.Fatalf("round %d: Cancel succeeded, yet done was called", i)
		case ok:
			// The message is still queued for the next receiver.
			if _, r2 := receive(c, true); r2.result().err != nil {
				t.Fatalf("round %d: Cancel succeeded, but the message is gone: %v", i, r2.result().err)
			}
		case r.count() != 1 || string(r.result().msg) != "m":
			t.Fatalf("round %d: Cancel failed, yet done called %d times with %q", i, r.count(), r.result().msg)
		}
		if s := c.Stats(); s.Messages != 0 || s.BlockedReaders != 0 {
			t.Fatalf("round %d: Stats = %+v", i, s)
		}
	}
}

// Many senders and receivers, small limits, receivers (and some senders)
// giving up at random deadlines and retrying. Every message is received
// exactly once, and each sender's messages leave the queue in the order it
// sent them. The dequeue order is not observable directly, so each receive
// is bracketed by tickets from a global counter taken before the call and
// after it returns: the dequeue happened in between. If message k of a
// sender was received (end ticket) before a receive of its message j < k
// began (start ticket), the queue let k overtake j.
func TestStress(t *testing.T) {
	for _, nReceivers := range []int{1, 8} {
		t.Run(fmt.Sprintf("receivers=%d", nReceivers), func(t *testing.T) {
			stress(t, 8, 2000, nReceivers)
		})
	}
}

func stress(t *testing.T, nSenders, perSender, nReceivers int) {
	baseline := runtime.NumGoroutine()
	c := mustNew(t, Limits{MaxBytes: 64, MaxMsgs: 4})

	// retry runs op with a short random deadline until it is not canceled.
	// It reports how many times it was canceled.
	retry := func(rng *rand.Rand, op func(ctx context.Context) error) (canceled int, err error) {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(100))*time.Microsecond)
			err := op(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				return canceled, err
			}
			canceled++
		}
	}

	var sendCancels, recvCancels atomic.Int64
	var senders sync.WaitGroup
	for s := range nSenders {
		senders.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(s), 3))
			for seq := range perSender {
				m := stressMsg(s, seq, rng)
				var err error
				if s%2 == 0 {
					err = c.sendContext(context.Background(), m)
				} else {
					var n int
					n, err = retry(rng, func(ctx context.Context) error { return c.sendContext(ctx, m) })
					sendCancels.Add(int64(n))
				}
				if err != nil {
					t.Errorf("sender %d, message %d: %v", s, seq, err)
					return
				}
			}
		})
	}

	type receipt struct{ sender, seq, start, end int64 }
	var ticket atomic.Int64
	got := make([][]receipt, nReceivers) // per receiver, what it took in order
	var receivers sync.WaitGroup
	for r := range nReceivers {
		receivers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 4))
			for {
				var m []byte
				var err error
				var start int64
				if r%2 == 0 && nReceivers > 1 {
					start = ticket.Add(1)
					m, err = c.receiveContext(context.Background())
				} else {
					var n int
					n, err = retry(rng, func(ctx context.Context) (err error) {
						start = ticket.Add(1)
						m, err = c.receiveContext(ctx)
						return err
					})
					recvCancels.Add(int64(n))
				}
				end := ticket.Add(1)
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Errorf("receiver %d: %v", r, err)
					return
				}
				s, seq := parseStressMsg(t, m)
				got[r] = append(got[r], receipt{int64(s), int64(seq), start, end})
			}
		})
	}

	noHang(t, "senders", senders.Wait)
	c.Hangup() // receivers drain, then read EOF
	noHang(t, "receivers", receivers.Wait)

	// receipts[s][seq] for every message received, once.
	receipts := make([][]*receipt, nSenders)
	for s := range receipts {
		receipts[s] = make([]*receipt, perSender)
	}
	for r := range got {
		for i := range got[r] {
			rc := &got[r][i]
			if rc.sender < 0 || rc.sender >= int64(nSenders) || rc.seq < 0 || rc.seq >= int64(perSender) {
				t.Fatalf("receiver %d got sender %d's message %d", r, rc.sender, rc.seq)
			}
			if receipts[rc.sender][rc.seq] != nil {
				t.Errorf("sender %d's message %d received twice", rc.sender, rc.seq)
			}
			receipts[rc.sender][rc.seq] = rc
		}
	}
	for s := range receipts {
		minEnd, minSeq := int64(math.MaxInt64), -1 // over the messages after seq
		for seq := perSender - 1; seq >= 0; seq-- {
			rc := receipts[s][seq]
			if rc == nil {
				t.Errorf("sender %d's message %d never received", s, seq)
				continue
			}
			if rc.start > minEnd {
				t.Errorf("sender %d's message %d was dequeued after its message %d", s, seq, minSeq)
			}
			if rc.end < minEnd {
				minEnd, minSeq = rc.end, seq
			}
		}
	}
	st := c.Stats()
	total := uint64(nSenders * perSender)
	if st.Sent != total || st.Received != total || st.Messages != 0 || st.BlockedReaders != 0 || st.BlockedWriters != 0 {
		t.Errorf("Stats = %+v", st)
	}
	if n := c.Close(); n != 0 {
		t.Errorf("Close discarded %d messages, want 0", n)
	}
	t.Logf("%d messages; %d send and %d receive deadlines hit", total, sendCancels.Load(), recvCancels.Load())
	checkGoroutines(t, baseline)
}

// Hangup and Close race senders and receivers: every waiter completes
// exactly once, and no goroutine is left behind.
func TestHangupCloseRace(t *testing.T) {
	baseline := runtime.NumGoroutine()
	for round := range 50 {
		c := mustNew(t, Limits{MaxBytes: 16, MaxMsgs: 2})
		var wg sync.WaitGroup
		var delivered, accepted atomic.Int64
		for g := range 4 {
			wg.Go(func() {
				for {
					err := c.sendContext(context.Background(), []byte{byte(g)})
					if err == ErrHungUp || err == ErrClosed {
						return
					}
					if err != nil {
						t.Errorf("SendContext: %v", err)
						return
					}
					accepted.Add(1)
				}
			})
			wg.Go(func() {
				for {
					_, err := c.receiveContext(context.Background())
					if err == io.EOF {
						return
					}
					if err != nil {
						t.Errorf("ReceiveContext: %v", err)
						return
					}
					delivered.Add(1)
				}
			})
		}
		// Let traffic start, so that the end finds waiters parked and
		// messages queued.
		waitUntil(t, "some traffic", func() bool { return c.Stats().Sent > uint64(round) })
		var discarded int
		if round%2 == 0 {
			c.Hangup()
			discarded = c.Close()
		} else {
			discarded = c.Close()
		}
		noHang(t, "goroutines ending after Close", wg.Wait)
		if a, d := accepted.Load(), delivered.Load(); a != d+int64(discarded) {
			t.Fatalf("round %d: %d accepted, %d delivered, %d discarded", round, a, d, discarded)
		}
	}
	checkGoroutines(t, baseline)
}
