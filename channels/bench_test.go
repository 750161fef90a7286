package channels

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
)

var benchSizes = []int{64, 4 << 10, 64 << 10}

func sizeName(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func nop([]byte, error) {}

// Uncontended: one goroutine sends a message and receives it back.
func BenchmarkSendReceive(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			c := mustNew(b, Limits{MaxBytes: 1 << 20, MaxMsgs: 64})
			msg := make([]byte, size)
			var got []byte
			recv := func(m []byte, err error) { got = m }
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				c.Send(c.NewWaiter(nop), msg)
				c.Receive(c.NewWaiter(recv))
				msg = got // the receiver owns it now; send it again
			}
			if len(msg) != size {
				b.Fatalf("got %d bytes", len(msg))
			}
		})
	}
}

// The same through the blocking wrappers.
func BenchmarkSendReceiveContext(b *testing.B) {
	ctx := context.Background()
	c := mustNew(b, Limits{MaxBytes: 1 << 20, MaxMsgs: 64})
	msg := make([]byte, 64)
	b.SetBytes(64)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.sendContext(ctx, msg); err != nil {
			b.Fatal(err)
		}
		m, err := c.receiveContext(ctx)
		if err != nil {
			b.Fatal(err)
		}
		msg = m
	}
}

// A Send handed straight to a parked receiver (the FUSE daemon's pending
// READ answered by a WRITE).
func BenchmarkHandoff(b *testing.B) {
	c := mustNew(b, Limits{MaxBytes: 1 << 20, MaxMsgs: 64})
	msg := make([]byte, 64)
	var got []byte
	recv := func(m []byte, err error) { got = m }
	b.SetBytes(64)
	b.ReportAllocs()
	for b.Loop() {
		c.Receive(c.NewWaiter(recv)) // parks
		c.Send(c.NewWaiter(nop), msg)
		msg = got
	}
	if s := c.Stats(); s.Messages != 0 || s.BlockedReaders != 0 {
		b.Fatalf("Stats = %+v", s)
	}
}

// Contended: parallel senders, receivers blocking in ReceiveContext.
func BenchmarkContended(b *testing.B) {
	for _, receivers := range []int{1, 4} {
		for _, size := range []int{64, 4 << 10} {
			b.Run(fmt.Sprintf("receivers=%d/%s", receivers, sizeName(size)), func(b *testing.B) {
				c := mustNew(b, Limits{MaxBytes: 1 << 20, MaxMsgs: 64})
				var wg sync.WaitGroup
				for range receivers {
					wg.Go(func() {
						for {
							if _, err := c.receiveContext(context.Background()); err != nil {
								if err != io.EOF {
									b.Error(err)
								}
								return
							}
						}
					})
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					for pb.Next() {
						if err := c.sendContext(ctx, make([]byte, size)); err != nil {
							b.Error(err)
							return
						}
					}
				})
				c.Hangup()
				wg.Wait()
				b.StopTimer()
			})
		}
	}
}

// BenchmarkTrySendReceive is the daemon's fast path (TrySend, TryReceive),
// with and without a budget (each message charged and given back by Done).
func BenchmarkTrySendReceive(b *testing.B) {
	for _, budget := range []bool{false, true} {
		name := "nobudget"
		if budget {
			name = "budget"
		}
		b.Run(name, func(b *testing.B) {
			c := mustNew(b, Limits{MaxBytes: 1 << 20, MaxMsgs: 64})
			if budget {
				a, err := NewBudget(BudgetLimits{MaxMemory: 1 << 30, UserMemory: 1 << 29}).NewAccount(1, 0)
				if err != nil {
					b.Fatal(err)
				}
				if c, err = NewInBudget(Limits{MaxBytes: 1 << 20, MaxMsgs: 64}, a); err != nil {
					b.Fatal(err)
				}
			}
			msg := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.TrySend(msg); err != nil {
					b.Fatal(err)
				}
				m, err := c.TryReceive()
				if err != nil {
					b.Fatal(err)
				}
				c.Done(m)
				msg = m
			}
		})
	}
}
