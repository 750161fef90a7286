package channels

type waiterState uint8

const (
	waiterNew    waiterState = iota // not yet given to Send or Receive
	waiterParked                    // in a channel's senders or receivers list
	waiterDone                      // completed or canceled
)

// A Waiter is one send or receive on a channel, from NewWaiter to its
// completion. Use it for a single operation.
type Waiter struct {
	ch   *Channel
	done func(msg []byte, err error)

	// Guarded by ch.mu.
	state      waiterState
	msg        []byte // a parked sender's message
	list       *waitList
	prev, next *Waiter
}

// Cancel withdraws w if it has not completed, and reports whether it did;
// then w's done function is never called and the caller answers for the
// operation (a canceled send sent nothing, a canceled receive took
// nothing). Cancel may be called before w is given to Send or Receive: that
// operation then does nothing.
func (w *Waiter) Cancel() bool {
	c := w.ch
	var s settlement
	c.mu.Lock()
	canceled := w.state != waiterDone
	if w.state == waiterParked {
		list := w.list
		list.remove(w)
		w.msg = nil
		if list == &c.senders {
			// It may have been the head that kept later senders out, or
			// the only one: either way there may be room now.
			c.admitSenders(&s)
			c.wake(&s, Writable)
		}
	}
	w.state = waiterDone
	c.mu.Unlock()
	s.run()
	return canceled
}

// waitList is an intrusive FIFO of parked waiters.
type waitList struct {
	head, tail *Waiter
	len        int
}

func (l *waitList) pushBack(w *Waiter) {
	w.state = waiterParked
	w.list = l
	w.prev, w.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.len++
}

func (l *waitList) popFront() *Waiter {
	w := l.head
	l.remove(w)
	return w
}

func (l *waitList) remove(w *Waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next, w.list = nil, nil, nil
	l.len--
}

// settlement collects what a locked section decided, to be carried out
// after the lock is released: waiters to complete, then watches to wake.
type settlement struct {
	done  []completion
	wakes []*Watch
	retry []*Channel // channels of the budget to retry: memory was released
}

type completion struct {
	w   *Waiter
	msg []byte
	err error
}

// complete marks w done and queues its done call. Requires w.ch.mu.
func (s *settlement) complete(w *Waiter, msg []byte, err error) {
	w.state = waiterDone
	s.done = append(s.done, completion{w, msg, err})
}

func (s *settlement) run() {
	for _, c := range s.done {
		c.w.done(c.msg, c.err)
	}
	for _, w := range s.wakes {
		w.fire()
	}
	for _, c := range s.retry {
		c.retryAdmission()
	}
}
