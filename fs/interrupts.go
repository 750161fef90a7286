package fs

import (
	"sync"
	"time"

	"bazil.org/fuse"
)

// interruptible is a request parked somewhere; interrupt withdraws it and,
// if that succeeded, answers it EINTR.
type interruptible interface {
	interrupt()
}

// earlyInterruptTTL is how long an INTERRUPT whose request we have not
// seen is remembered. The kernel sends INTERRUPT only for requests it has
// already handed to us, so the request is being handled by another
// goroutine; it either parks within microseconds or has already been
// answered (then the entry is garbage, dropped after this long).
const earlyInterruptTTL = 10 * time.Second

// pendingRequests tracks parked requests by ID for INTERRUPT.
type pendingRequests struct {
	mu      sync.Mutex                       // guards both maps
	waiting map[fuse.RequestID]interruptible // GUARDED_BY(mu); parked, or about to park
	early   map[fuse.RequestID]time.Time     // GUARDED_BY(mu); interrupts seen before their request parked
}

func newPendingRequests() *pendingRequests {
	return &pendingRequests{
		waiting: make(map[fuse.RequestID]interruptible),
		early:   make(map[fuse.RequestID]time.Time),
	}
}

// add registers a request that is about to park. It returns false if the
// request was interrupted already: then the caller answers EINTR.
func (p *pendingRequests) add(id fuse.RequestID, r interruptible) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.early[id]; ok {
		delete(p.early, id)
		return false
	}
	p.waiting[id] = r
	return true
}

// remove forgets a request that was answered.
func (p *pendingRequests) remove(id fuse.RequestID) {
	p.mu.Lock()
	delete(p.waiting, id)
	p.mu.Unlock()
}

// interrupt tells the request with the given ID that the kernel
// interrupted it, or remembers the ID if that request has not registered
// yet. The request stays registered until it is answered (remove).
func (p *pendingRequests) interrupt(id fuse.RequestID) {
	p.mu.Lock()
	r, ok := p.waiting[id]
	if !ok {
		now := time.Now()
		for old, t := range p.early {
			if now.Sub(t) > earlyInterruptTTL {
				delete(p.early, old)
			}
		}
		p.early[id] = now
	}
	p.mu.Unlock()
	if ok {
		r.interrupt()
	}
}

// len reports how many requests are parked.
func (p *pendingRequests) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting)
}
