package channels

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Errors of a Budget: a limit of the whole budget (the mount) or of one
// owner (a uid) would be exceeded.
var (
	// ErrNoSpace: a limit of the whole budget (ENOSPC).
	ErrNoSpace = errors.New("channels: limit of the mount reached")
	// ErrQuota: a limit of the owner (EDQUOT).
	ErrQuota = errors.New("channels: limit of the owner reached")
)

// BudgetLimits bound what all channels of a budget, and the channels of one
// owner, may hold. Zero or negative means no limit. The owner limits do
// not apply to uid 0 (root); the limits of the whole do.
type BudgetLimits struct {
	MaxChannels  int64 // channels in the budget
	UserChannels int64 // channels of one owner
	MaxMemory    int64 // bytes charged in the budget
	UserMemory   int64 // bytes charged to one owner
}

// MessageOverhead is what a queued message costs beyond its buffer: its
// slot in the queue's ring (a slice header, and the ring keeps up to twice
// the slots it needs) and the allocator's share. Measured: see
// TestMessageCost and the README.
const MessageOverhead = 64

// MessageCost is what a queued message costs: its buffer's capacity (the
// memory it holds, not just its length) plus MessageOverhead.
func MessageCost(msg []byte) int64 { return int64(cap(msg)) + MessageOverhead }

// A Budget is the memory and channel count shared by the channels of one
// mount, with limits for the whole and for each owner. Charges are made
// through Accounts, one per channel. Channels whose senders wait for memory
// are woken when memory is released anywhere in the budget.
//
// Lock order: a Channel's mutex before the Budget's. The Budget never calls
// into a Channel while holding its own.
type Budget struct {
	limits BudgetLimits // immutable

	mu       sync.Mutex            // guards the fields below and every Account's fields
	channels int64                 // GUARDED_BY(mu)
	memory   int64                 // GUARDED_BY(mu)
	users    map[uint32]*Usage     // GUARDED_BY(mu): owners holding something
	waiting  map[*Channel]struct{} // GUARDED_BY(mu): channels to retry when memory is released
}

// Usage is what a budget, or one owner in it, holds.
type Usage struct {
	Channels int64
	Memory   int64
}

// NewBudget returns an empty budget with the given limits.
func NewBudget(l BudgetLimits) *Budget {
	return &Budget{limits: l, users: make(map[uint32]*Usage), waiting: make(map[*Channel]struct{})}
}

// Limits returns the limits given to NewBudget.
func (b *Budget) Limits() BudgetLimits { return b.limits }

// Usage returns what the whole budget holds now.
func (b *Budget) Usage() Usage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Usage{Channels: b.channels, Memory: b.memory}
}

// UserUsage returns what the owner uid holds now.
func (b *Budget) UserUsage(uid uint32) Usage {
	b.mu.Lock()
	defer b.mu.Unlock()
	if u := b.users[uid]; u != nil {
		return *u
	}
	return Usage{}
}

// UserUsages returns what every owner holding something holds, by uid, in
// increasing uid order.
func (b *Budget) UserUsages() []UidUsage {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]UidUsage, 0, len(b.users))
	for uid, u := range b.users {
		out = append(out, UidUsage{uid, *u})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Uid < out[j].Uid })
	return out
}

// UidUsage is one owner's usage.
type UidUsage struct {
	Uid uint32
	Usage
}

// An Account is one channel's share of a budget: it counts as one channel
// of its owner until RemoveChannel, and holds the memory charged through it
// until released. Its methods are safe for concurrent use.
type Account struct {
	b *Budget

	uid     uint32 // GUARDED_BY(b.mu)
	memory  int64  // GUARDED_BY(b.mu)
	counted bool   // GUARDED_BY(b.mu): counts as a channel
}

// NewAccount counts a new channel of owner uid and charges it base bytes
// (what the channel itself costs). It fails with an error wrapping
// ErrNoSpace or ErrQuota, and then counts and charges nothing.
func (b *Budget) NewAccount(uid uint32, base int64) (*Account, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.users[uid]
	if u == nil {
		u = &Usage{}
	}
	switch l := b.limits; {
	case l.MaxChannels > 0 && b.channels+1 > l.MaxChannels:
		return nil, fmt.Errorf("%d channels in the mount (max-channels): %w", b.channels, ErrNoSpace)
	case l.UserChannels > 0 && uid != 0 && u.Channels+1 > l.UserChannels:
		return nil, fmt.Errorf("uid %d has %d channels (user-channels): %w", uid, u.Channels, ErrQuota)
	}
	a := &Account{b: b, uid: uid}
	if err := a.fits(*u, base); err != nil {
		return nil, err
	}
	b.users[uid] = u
	b.channels++
	u.Channels++
	a.counted = true
	a.add(u, base)
	return a, nil
}

// fits reports whether n more bytes may be charged to a, whose owner's
// usage is u. Requires b.mu.
func (a *Account) fits(u Usage, n int64) error {
	b := a.b
	l := b.limits
	if l.MaxMemory > 0 && b.memory+n > l.MaxMemory {
		return fmt.Errorf("%d of %d bytes in use in the mount, %d more wanted (max-memory): %w", b.memory, l.MaxMemory, n, ErrNoSpace)
	}
	if l.UserMemory > 0 && a.uid != 0 && u.Memory+n > l.UserMemory {
		return fmt.Errorf("uid %d uses %d of %d bytes, %d more wanted (user-memory): %w", a.uid, u.Memory, l.UserMemory, n, ErrQuota)
	}
	return nil
}

// add charges n bytes (negative: releases). Requires b.mu.
func (a *Account) add(u *Usage, n int64) {
	a.memory += n
	u.Memory += n
	a.b.memory += n
	if u.Channels == 0 && u.Memory == 0 {
		delete(a.b.users, a.uid)
	}
}

// usage returns the owner's usage now. Requires b.mu.
func (a *Account) usage() Usage {
	if u := a.b.users[a.uid]; u != nil {
		return *u
	}
	return Usage{}
}

// user returns the owner's usage, creating it. Requires b.mu.
func (a *Account) user() *Usage {
	u := a.b.users[a.uid]
	if u == nil {
		u = &Usage{}
		a.b.users[a.uid] = u
	}
	return u
}

// Charge charges n ≥ 0 bytes to the account if they fit in the limits, and
// otherwise fails with an error wrapping ErrNoSpace or ErrQuota and charges
// nothing.
func (a *Account) Charge(n int64) error {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	return a.charge(n)
}

// charge requires b.mu.
func (a *Account) charge(n int64) error {
	if err := a.fits(a.usage(), n); err != nil {
		return err
	}
	a.add(a.user(), n)
	return nil
}

// Release gives back n bytes charged before, and wakes the channels of the
// budget that wait for memory.
func (a *Account) Release(n int64) {
	for _, c := range a.release(n) {
		c.retryAdmission()
	}
}

// release gives back n bytes and returns the channels to retry (the caller
// retries them with no lock held).
func (a *Account) release(n int64) []*Channel {
	if n == 0 {
		return nil
	}
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	a.add(a.user(), -min(n, a.memory))
	if len(b.waiting) == 0 {
		return nil
	}
	retry := make([]*Channel, 0, len(b.waiting))
	for c := range b.waiting {
		retry = append(retry, c)
	}
	clear(b.waiting)
	return retry
}

// Memory returns the bytes charged to the account now.
func (a *Account) Memory() int64 {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	return a.memory
}

// Owner returns the uid the account is charged to.
func (a *Account) Owner() uint32 {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	return a.uid
}

// SetOwner moves the account, its channel and its memory, to owner uid
// (after a chown). The new owner may end up over its limits: only later
// charges are refused.
func (a *Account) SetOwner(uid uint32) {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if uid == a.uid {
		return
	}
	old := a.user()
	old.Memory -= a.memory
	if a.counted {
		old.Channels--
	}
	if old.Channels == 0 && old.Memory == 0 {
		delete(b.users, a.uid)
	}
	a.uid = uid
	u := a.user()
	u.Memory += a.memory
	if a.counted {
		u.Channels++
	}
}

// RemoveChannel stops counting the account as a channel (after rmdir).
// Memory still charged stays charged until released. Idempotent.
func (a *Account) RemoveChannel() {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if !a.counted {
		return
	}
	a.counted = false
	b.channels--
	u := a.user()
	u.Channels--
	if u.Channels == 0 && u.Memory == 0 {
		delete(b.users, a.uid)
	}
}

// wantMemory registers c to be retried when memory is released. Requires
// b.mu.
func (b *Budget) wantMemory(c *Channel) {
	b.waiting[c] = struct{}{}
}

// forget unregisters c (closed). Requires nothing.
func (b *Budget) forget(c *Channel) {
	b.mu.Lock()
	delete(b.waiting, c)
	b.mu.Unlock()
}

// chargeMessage charges a message's cost to a, or registers c to be
// retried when memory is released and returns false. Requires c.mu.
func (a *Account) chargeMessage(c *Channel, cost int64) bool {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	if a.charge(cost) != nil {
		a.b.wantMemory(c)
		return false
	}
	return true
}

// forceCharge charges cost to a whatever the limits. Requires nothing.
func (a *Account) forceCharge(cost int64) {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	a.add(a.user(), cost)
}

// hasRoom reports whether a message of cost bytes would be charged now,
// registering c to be retried when memory is released if not. Requires
// c.mu.
func (a *Account) hasRoom(c *Channel, cost int64) bool {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	if a.fits(a.usage(), cost) != nil {
		a.b.wantMemory(c)
		return false
	}
	return true
}

// Adopt counts a channel that exists already (another daemon made it, in
// a namespace shared with this one) and charges it base bytes, beyond the
// limits if need be: refusing it would not make it go away.
func (b *Budget) Adopt(uid uint32, base int64) *Account {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.users[uid]
	if u == nil {
		u = &Usage{}
		b.users[uid] = u
	}
	a := &Account{b: b, uid: uid, counted: true}
	b.channels++
	u.Channels++
	a.add(u, base)
	return a
}
