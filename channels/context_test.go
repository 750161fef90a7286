package channels

import "context"

// The blocking calls the tests use: the machinery of Waiter with a
// context for cancellation. The product never blocks a goroutine on a
// channel (fs parks requests), so these live with the tests.

// sendContext sends msg (taking ownership of it), waiting for room until ctx
// is done; it returns ctx.Err() if the message was not sent because of that.
func (c *Channel) sendContext(ctx context.Context, msg []byte) error {
	_, err := c.waitContext(ctx, func(w *Waiter) { c.Send(w, msg) })
	return err
}

// receiveContext returns the next message, waiting for one until ctx is
// done; it returns ctx.Err() if none was taken because of that, and io.EOF
// once the channel is hung up and drained, or closed.
func (c *Channel) receiveContext(ctx context.Context) ([]byte, error) {
	return c.waitContext(ctx, func(w *Waiter) { c.Receive(w) })
}

func (c *Channel) waitContext(ctx context.Context, start func(*Waiter)) ([]byte, error) {
	type result struct {
		msg []byte
		err error
	}
	results := make(chan result, 1)
	w := c.NewWaiter(func(msg []byte, err error) { results <- result{msg, err} })
	start(w)
	select {
	case r := <-results:
		return r.msg, r.err
	case <-ctx.Done():
		if w.Cancel() {
			return nil, ctx.Err()
		}
		r := <-results
		return r.msg, r.err
	}
}
