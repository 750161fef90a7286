package channels

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"testing"
)

// budgetStep is one operation of a budget scenario on accounts a0, a1, …
type budgetStep struct {
	op      string // new, charge, release, remove, owner
	acct    int    // the account (new: the index it gets)
	uid     uint32 // new, owner
	n       int64  // new: base; charge, release: bytes
	wantErr error  // new, charge
	want    Usage  // the mount's usage after the step
}

func TestBudgetScenarios(t *testing.T) {
	lim := BudgetLimits{MaxChannels: 3, UserChannels: 2, MaxMemory: 1000, UserMemory: 600}
	tests := map[string][]budgetStep{
		"channels per user, then per mount": {
			{op: "new", acct: 0, uid: 1, n: 10, want: Usage{1, 10}},
			{op: "new", acct: 1, uid: 1, n: 10, want: Usage{2, 20}},
			{op: "new", acct: 2, uid: 1, n: 10, wantErr: ErrQuota, want: Usage{2, 20}},
			{op: "new", acct: 2, uid: 2, n: 10, want: Usage{3, 30}},
			{op: "new", acct: 3, uid: 3, n: 10, wantErr: ErrNoSpace, want: Usage{3, 30}},
			{op: "remove", acct: 0, want: Usage{2, 30}},
			{op: "remove", acct: 0, want: Usage{2, 30}}, // idempotent
			{op: "new", acct: 3, uid: 3, n: 10, want: Usage{3, 40}},
		},
		"memory per user, then per mount": {
			{op: "new", acct: 0, uid: 1, want: Usage{1, 0}},
			{op: "new", acct: 1, uid: 2, want: Usage{2, 0}},
			{op: "charge", acct: 0, n: 600, want: Usage{2, 600}},
			{op: "charge", acct: 0, n: 1, wantErr: ErrQuota, want: Usage{2, 600}},
			{op: "charge", acct: 1, n: 401, wantErr: ErrNoSpace, want: Usage{2, 600}},
			{op: "charge", acct: 1, n: 400, want: Usage{2, 1000}},
			{op: "release", acct: 0, n: 100, want: Usage{2, 900}},
			{op: "charge", acct: 1, n: 100, want: Usage{2, 1000}},
			{op: "release", acct: 1, n: 10000, want: Usage{2, 500}}, // never below zero
		},
		"root is exempt from the owner limits, not from the mount's": {
			{op: "new", acct: 0, uid: 0, n: 700, want: Usage{1, 700}},
			{op: "new", acct: 1, uid: 0, want: Usage{2, 700}},
			{op: "new", acct: 2, uid: 0, want: Usage{3, 700}},
			{op: "new", acct: 3, uid: 0, wantErr: ErrNoSpace, want: Usage{3, 700}},
			{op: "charge", acct: 0, n: 300, want: Usage{3, 1000}},
			{op: "charge", acct: 1, n: 1, wantErr: ErrNoSpace, want: Usage{3, 1000}},
		},
		"base cost counts against memory": {
			{op: "new", acct: 0, uid: 1, n: 601, wantErr: ErrQuota, want: Usage{0, 0}},
			{op: "new", acct: 0, uid: 1, n: 600, want: Usage{1, 600}},
		},
		"a removed channel's memory stays until released": {
			{op: "new", acct: 0, uid: 1, n: 100, want: Usage{1, 100}},
			{op: "charge", acct: 0, n: 400, want: Usage{1, 500}},
			{op: "remove", acct: 0, want: Usage{0, 500}},
			{op: "charge", acct: 0, n: 100, want: Usage{0, 600}},
			{op: "charge", acct: 0, n: 1, wantErr: ErrQuota, want: Usage{0, 600}},
			{op: "release", acct: 0, n: 600, want: Usage{0, 0}},
		},
		"chown moves channel and memory": {
			{op: "new", acct: 0, uid: 1, n: 100, want: Usage{1, 100}},
			{op: "new", acct: 1, uid: 1, n: 100, want: Usage{2, 200}},
			{op: "charge", acct: 0, n: 400, want: Usage{2, 600}},
			{op: "owner", acct: 0, uid: 2, want: Usage{2, 600}},
			{op: "new", acct: 2, uid: 1, n: 100, want: Usage{3, 700}}, // uid 1 has one channel again
			{op: "charge", acct: 1, n: 300, want: Usage{3, 1000}},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			b := NewBudget(lim)
			accts := map[int]*Account{}
			for i, s := range steps {
				var err error
				switch s.op {
				case "new":
					var a *Account
					a, err = b.NewAccount(s.uid, s.n)
					if err == nil {
						accts[s.acct] = a
					} else if a != nil {
						t.Fatalf("step %d: NewAccount failed but returned an account", i)
					}
				case "charge":
					err = accts[s.acct].Charge(s.n)
				case "release":
					accts[s.acct].Release(s.n)
				case "remove":
					accts[s.acct].RemoveChannel()
				case "owner":
					accts[s.acct].SetOwner(s.uid)
				}
				if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
					t.Fatalf("step %d (%s): err %v, want %v", i, s.op, err, s.wantErr)
				}
				if got := b.Usage(); got != s.want {
					t.Fatalf("step %d (%s): usage %+v, want %+v", i, s.op, got, s.want)
				}
				// The owners' usages add up to the mount's.
				var sum Usage
				for _, u := range b.UserUsages() {
					if u.Channels == 0 && u.Memory == 0 {
						t.Fatalf("step %d: uid %d listed with nothing", i, u.Uid)
					}
					sum.Channels += u.Channels
					sum.Memory += u.Memory
				}
				if sum != s.want {
					t.Fatalf("step %d: owners' usages add up to %+v, want %+v", i, sum, s.want)
				}
			}
		})
	}
}

func TestBudgetChownUsage(t *testing.T) {
	b := NewBudget(BudgetLimits{})
	a, _ := b.NewAccount(1, 10)
	a.Charge(90)
	a.SetOwner(2)
	if got := b.UserUsage(1); got != (Usage{}) {
		t.Fatalf("old owner keeps %+v", got)
	}
	if got := b.UserUsage(2); got != (Usage{1, 100}) {
		t.Fatalf("new owner has %+v, want 1 channel, 100 bytes", got)
	}
	if a.Owner() != 2 || a.Memory() != 100 {
		t.Fatalf("account: owner %d memory %d", a.Owner(), a.Memory())
	}
}

// budgetChannel returns a channel with roomy queue limits in budget b,
// owned by uid.
func budgetChannel(t *testing.T, b *Budget, uid uint32) (*Channel, *Account) {
	t.Helper()
	a, err := b.NewAccount(uid, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewInBudget(Limits{MaxBytes: 1 << 30, MaxMsgs: 1 << 20}, a)
	if err != nil {
		t.Fatal(err)
	}
	return c, a
}

// msgOf returns a message of n bytes with capacity n, so its cost is
// n + MessageOverhead.
func msgOf(n int) []byte { return make([]byte, n) }

func TestBudgetMessages(t *testing.T) {
	const m = 100 + MessageOverhead // the cost of msgOf(100)
	tests := []struct {
		name string
		lim  BudgetLimits
		run  func(t *testing.T, b *Budget)
	}{
		{"a message beyond the budget would block, and is charged nothing", BudgetLimits{MaxMemory: 3 * m}, func(t *testing.T, b *Budget) {
			c, a := budgetChannel(t, b, 1)
			for i := range 3 {
				if err := c.TrySend(msgOf(100)); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			if err := c.TrySend(msgOf(100)); err != ErrWouldBlock {
				t.Fatalf("4th send: %v, want ErrWouldBlock", err)
			}
			if a.Memory() != 3*m || c.Stats().Messages != 3 {
				t.Fatalf("memory %d, messages %d", a.Memory(), c.Stats().Messages)
			}
			if r := c.Poll(nil, Writable); r&Writable != 0 {
				t.Fatalf("Writable with no memory left")
			}
			got, err := c.TryReceive()
			if err != nil {
				t.Fatal(err)
			}
			if a.Memory() != 3*m {
				t.Fatalf("after a receive, before Done: memory %d, want %d (the receiver holds it)", a.Memory(), 3*m)
			}
			c.Done(got)
			if a.Memory() != 2*m {
				t.Fatalf("after Done: memory %d, want %d", a.Memory(), 2*m)
			}
			if err := c.TrySend(msgOf(100)); err != nil {
				t.Fatalf("send after a receive: %v", err)
			}
		}},
		{"the user limit blocks one owner, not another", BudgetLimits{UserMemory: 2 * m}, func(t *testing.T, b *Budget) {
			c1, _ := budgetChannel(t, b, 1)
			c1b, _ := budgetChannel(t, b, 1)
			c2, _ := budgetChannel(t, b, 2)
			c1.TrySend(msgOf(100))
			c1b.TrySend(msgOf(100))
			if err := c1.TrySend(msgOf(100)); err != ErrWouldBlock {
				t.Fatalf("uid 1's third message: %v", err)
			}
			for i := range 2 {
				if err := c2.TrySend(msgOf(100)); err != nil {
					t.Fatalf("uid 2's message %d: %v", i, err)
				}
			}
		}},
		{"memory freed in one channel admits a sender parked in another", BudgetLimits{MaxMemory: 2 * m}, func(t *testing.T, b *Budget) {
			c1, _ := budgetChannel(t, b, 1)
			c2, _ := budgetChannel(t, b, 2)
			c1.TrySend(msgOf(100))
			c2.TrySend(msgOf(100))
			_, r := send(c2, "x", false) // parks: no memory
			if r.count() != 0 || c2.Stats().BlockedWriters != 1 {
				t.Fatalf("a send beyond the budget did not park")
			}
			var wakes wakeCounter
			w := c2.NewWatch(wakes.wake)
			c2.Poll(w, Writable)
			got, err := c1.TryReceive()
			if err != nil {
				t.Fatal(err)
			}
			if r.count() != 0 {
				t.Fatal("admitted while the receiver still holds the message")
			}
			c1.Done(got)
			if r.count() != 1 || r.result().err != nil {
				t.Fatalf("the parked send was not admitted: %d completions", r.count())
			}
			if c2.Stats().Messages != 2 {
				t.Fatalf("c2 holds %d messages, want 2", c2.Stats().Messages)
			}
			if wakes.calls() != 1 {
				t.Fatalf("c2's watch woke %d times, want 1", wakes.calls())
			}
		}},
		{"flush and close release memory and admit others", BudgetLimits{MaxMemory: 2 * m}, func(t *testing.T, b *Budget) {
			c1, a1 := budgetChannel(t, b, 1)
			c2, _ := budgetChannel(t, b, 2)
			c1.TrySend(msgOf(100))
			c1.TrySend(msgOf(100))
			_, r := send(c2, "x", false)
			if n := c1.Flush(); n != 2 || a1.Memory() != 0 {
				t.Fatalf("flush: %d, memory %d", n, a1.Memory())
			}
			if r.count() != 1 {
				t.Fatal("flush did not admit the parked sender")
			}
			c2.TrySend(msgOf(100))
			_, r = send(c1, "y", false)
			c2.Close()
			if r.count() != 1 || r.result().err != nil {
				t.Fatal("close did not admit the parked sender")
			}
			if b.Usage().Memory != a1.Memory() || c1.Stats().Messages != 1 {
				t.Fatalf("budget holds %d after c2 closed, c1 %d", b.Usage().Memory, a1.Memory())
			}
		}},
		{"a receiver takes straight from a sender waiting for memory", BudgetLimits{MaxMemory: m}, func(t *testing.T, b *Budget) {
			c1, _ := budgetChannel(t, b, 1)
			c2, a2 := budgetChannel(t, b, 2)
			c1.TrySend(msgOf(100))
			_, sr := send(c2, "direct", false) // c2's queue is empty, yet it waits
			if r := c2.Poll(nil, Readable); r&Readable == 0 {
				t.Fatal("not Readable with a sender waiting")
			}
			_, rr := receive(c2, false)
			if rr.count() != 1 || string(rr.result().msg) != "direct" || sr.count() != 1 {
				t.Fatalf("hand-off: receiver %d %q, sender %d", rr.count(), rr.result().msg, sr.count())
			}
			// It exists: charged while the receiver holds it, beyond the budget.
			if want := MessageCost(rr.result().msg); a2.Memory() != want {
				t.Fatalf("a handed-off message is charged %d, want %d", a2.Memory(), want)
			}
			c2.Done(rr.result().msg)
			if a2.Memory() != 0 {
				t.Fatalf("after Done: %d", a2.Memory())
			}
			st := c2.Stats()
			if st.Sent != 1 || st.Received != 1 || st.Messages != 0 {
				t.Fatalf("counters %+v", st)
			}
		}},
		{"non-blocking send gets ErrWouldBlock and a later release wakes pollers", BudgetLimits{UserMemory: m}, func(t *testing.T, b *Budget) {
			c, _ := budgetChannel(t, b, 1)
			other, _ := budgetChannel(t, b, 1)
			other.TrySend(msgOf(100))
			_, r := send(c, "x", true)
			if r.result().err != ErrWouldBlock {
				t.Fatalf("non-blocking send: %v", r.result().err)
			}
			var wakes wakeCounter
			w := c.NewWatch(wakes.wake)
			if c.Poll(w, Writable)&Writable != 0 {
				t.Fatal("Writable with no memory")
			}
			got, _ := other.TryReceive()
			other.Done(got)
			if wakes.calls() != 1 || c.Poll(nil, Writable)&Writable == 0 {
				t.Fatalf("wakes %d after the release", wakes.calls())
			}
		}},
		{"hangup fails a sender waiting for memory, charging nothing", BudgetLimits{MaxMemory: m}, func(t *testing.T, b *Budget) {
			c1, _ := budgetChannel(t, b, 1)
			c2, a2 := budgetChannel(t, b, 2)
			c1.TrySend(msgOf(100))
			_, r := send(c2, "x", false)
			c2.Hangup()
			if r.result().err != ErrHungUp || a2.Memory() != 0 {
				t.Fatalf("after hangup: %v, memory %d", r.result().err, a2.Memory())
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, NewBudget(tc.lim)) })
	}
}

// TestBudgetStress runs senders and receivers on several channels of one
// small budget: every message arrives once, and all memory comes back.
func TestBudgetStress(t *testing.T) {
	const channels, perSender = 4, 2000
	b := NewBudget(BudgetLimits{MaxMemory: 20 * (64 + MessageOverhead), UserMemory: 12 * (64 + MessageOverhead)})
	var wg sync.WaitGroup
	var accts []*Account
	var chans []*Channel
	for i := range channels {
		c, a := budgetChannel(t, b, uint32(i%2))
		accts = append(accts, a)
		chans = append(chans, c)
	}
	for i, c := range chans {
		wg.Go(func() {
			for j := range perSender {
				if err := c.sendContext(context.Background(), []byte(fmt.Sprintf("%d", j))); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for j := range perSender {
				m, err := c.receiveContext(context.Background())
				if err != nil || string(m) != fmt.Sprintf("%d", j) {
					t.Errorf("channel %d: got %q, %v; want %d", i, m, err, j)
					return
				}
				c.Done(m)
			}
		})
	}
	noHang(t, "budget stress", wg.Wait)
	if u := b.Usage(); u.Memory != 0 {
		t.Fatalf("budget holds %d bytes after every message was received", u.Memory)
	}
	for _, a := range accts {
		a.RemoveChannel()
	}
	if u := b.Usage(); u != (Usage{}) || len(b.UserUsages()) != 0 {
		t.Fatalf("budget holds %+v, %d owners", u, len(b.UserUsages()))
	}
}

// TestMessageCost checks that MessageOverhead covers what a queued
// message costs the Go heap beyond its buffer, with the queue's ring at
// its emptiest (just grown).
func TestMessageCost(t *testing.T) {
	for _, n := range []int{1 << 14, 1<<14 + 1} {
		per := math.Inf(1)
		for range 3 { // the least of three: other garbage only adds
			c := mustNew(t, Limits{MaxBytes: 1 << 40, MaxMsgs: 1 << 30})
			bufs := make([][]byte, n)
			for i := range bufs {
				bufs[i] = make([]byte, 64)
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for _, m := range bufs {
				c.TrySend(m)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			per = min(per, float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n))
			runtime.KeepAlive(c)
			runtime.KeepAlive(bufs)
		}
		t.Logf("%d messages: %.1f bytes each beyond the buffer", n, per)
		if per > MessageOverhead {
			t.Errorf("a queued message costs %.1f bytes beyond its buffer, MessageOverhead is %d", per, MessageOverhead)
		}
	}
}
