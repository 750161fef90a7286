package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/ipcfs/ipcfs/natschan"
)

// The direct NATS clients: the exchange a NATS-backed msg makes, done with
// nats.go and nothing else, as the floor that design sits on. A writer
// publishes each message to a work-queue stream with a message ID and
// waits for the PubAck (a write(2) of msg does the same); a reader pulls
// one message at a time (Fetch(1), as a blocked READ makes a pull) and
// acknowledges it. An empty message ends the stream, as a hangup does.

// Roles of the direct NATS clients.
const (
	roleNATSPing = "nats-ping" // publish, pull the echo; time each round trip
	roleNATSPong = "nats-pong" // pull, acknowledge, publish the echo until the end
	roleNATSSend = "nats-send" // publish until the time or count is up, then the end
	roleNATSRecv = "nats-recv" // pull until the end or count; time first to last
)

// The pull of one message, as natschan makes it (queue.go: fetchWait,
// fetchHeartbeat).
const (
	natsFetchWait      = 5 * time.Second
	natsFetchHeartbeat = time.Second
)

// natsEnd is what a direct writer publishes when done: an empty message.
var natsEnd = []byte{}

// natsClient is one direct client's connection: it publishes to
// f.out (a subject) and pulls from f.in (a stream, through its consumer
// f.consumer).
type natsClient struct {
	f    clientFlags
	nc   *nats.Conn
	js   jetstream.JetStream
	cons jetstream.Consumer
}

func dialNATS(f clientFlags, read bool) (*natsClient, error) {
	if f.url == "" {
		return nil, errors.New("-url: want the NATS server's nats://host:port")
	}
	// nats.go allocates every message: let the collector run.
	debug.SetGCPercent(100)
	nc, err := nats.Connect(f.url, nats.Name("ipcfs bench client"))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", f.url, err)
	}
	c := &natsClient{f: f, nc: nc}
	if c.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, err
	}
	if read {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c.cons, err = c.js.Consumer(ctx, f.in, f.consumer); err != nil {
			nc.Close()
			return nil, fmt.Errorf("the consumer %s of %s: %w", f.consumer, f.in, err)
		}
	}
	return c, nil
}

// publish publishes p with a message ID of its own and waits for the
// stream to store it; while the stream is full (discard new) it retries.
func (c *natsClient) publish(p []byte) error {
	m := &nats.Msg{Subject: c.f.out, Data: p}
	id := nuid.Next()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.js.PublishMsg(ctx, m, jetstream.WithMsgID(id))
		cancel()
		if err == nil || !natschan.IsFull(err) {
			return err
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// next pulls one message and acknowledges it (a plain Ack: natschan's is
// a double ack confirmed on a goroutine of its own, once the READ is
// answered, so neither waits on the read path). It returns nil at the
// end of the stream.
func (c *natsClient) next() ([]byte, error) {
	for {
		batch, err := c.cons.Fetch(1, jetstream.FetchMaxWait(natsFetchWait), jetstream.FetchHeartbeat(natsFetchHeartbeat))
		if err != nil {
			return nil, fmt.Errorf("fetch: %w", err)
		}
		var msg jetstream.Msg
		for m := range batch.Messages() {
			msg = m
		}
		if msg == nil {
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("fetch: %w", err)
			}
			continue // nothing within the wait: pull again
		}
		if err := msg.Ack(); err != nil {
			return nil, fmt.Errorf("ack: %w", err)
		}
		return msg.Data(), nil
	}
}

func (c *natsClient) close() { c.nc.Close() }

func natsPing(f clientFlags) (clientResult, error) {
	c, err := dialNATS(f, true)
	if err != nil {
		return clientResult{}, err
	}
	defer c.close()
	buf := make([]byte, f.size)
	roundTrip := func() error {
		if err := c.publish(buf); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		in, err := c.next()
		if err != nil {
			return err
		}
		if len(in) != len(buf) {
			return fmt.Errorf("echo of %d bytes, want %d", len(in), len(buf))
		}
		return nil
	}
	samples, elapsed, err := timeRoundTrips(f, roundTrip, 1<<14)
	if err != nil {
		return clientResult{}, err
	}
	if err := c.publish(natsEnd); err != nil {
		return clientResult{}, fmt.Errorf("publish the end: %w", err)
	}
	return clientResult{Samples: samples, Count: int64(len(samples)), ElapsedNs: int64(elapsed)}, nil
}

func natsPong(f clientFlags) error {
	c, err := dialNATS(f, true)
	if err != nil {
		return err
	}
	defer c.close()
	for {
		in, err := c.next()
		if err != nil {
			return err
		}
		if len(in) == 0 {
			return nil
		}
		if err := c.publish(in); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
}

func natsSend(f clientFlags) (clientResult, error) {
	c, err := dialNATS(f, false)
	if err != nil {
		return clientResult{}, err
	}
	defer c.close()
	buf := make([]byte, f.size)
	start := time.Now()
	deadline := start.Add(f.dur)
	var n int64
	for ; f.count == 0 || n < f.count; n++ {
		if f.count == 0 && time.Now().After(deadline) {
			break
		}
		if err := c.publish(buf); err != nil {
			return clientResult{}, fmt.Errorf("publish: %w", err)
		}
	}
	elapsed := time.Since(start)
	if err := c.publish(natsEnd); err != nil {
		return clientResult{}, fmt.Errorf("publish the end: %w", err)
	}
	return clientResult{Count: n, ElapsedNs: int64(elapsed)}, nil
}

func natsRecv(f clientFlags) (clientResult, error) {
	c, err := dialNATS(f, true)
	if err != nil {
		return clientResult{}, err
	}
	defer c.close()
	var n int64
	var first, last time.Time
	for f.count == 0 || n < f.count {
		in, err := c.next()
		if err != nil {
			return clientResult{}, err
		}
		if len(in) == 0 {
			break
		}
		if len(in) != f.size {
			return clientResult{}, fmt.Errorf("message of %d bytes, want %d", len(in), f.size)
		}
		last = time.Now()
		if n == 0 {
			first = last
		}
		n++
	}
	return clientResult{Count: n, ElapsedNs: int64(last.Sub(first))}, nil
}
