package fs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"bazil.org/fuse"
	"golang.org/x/sys/unix"

	"github.com/ipcfs/ipcfs/channels"
	"github.com/ipcfs/ipcfs/shmregion"
)

// What a mount may hold, and who may change a channel.
//
// Every channel has an account in the mount's budget, charged to its
// owner's uid: channelCost at mkdir, each queued message at its real cost
// (channels.MessageCost), and the shm region's size in whole pages from the
// moment it grows. Limits of the mount give ENOSPC, limits of the owner
// EDQUOT; a message that does not fit waits as if the queue were full.
// Root is exempt from nothing.
//
// Each region that holds memory holds one memfd; the memfds of a mount
// are bounded below the process's RLIMIT_NOFILE (fdHeadroom), and a few
// descriptors are held in reserve and given back at shutdown, so that
// unmounting (which execs fusermount3) always has descriptors to use.

// channelCost is what a channel itself costs the daemon (its structures,
// table entries and name, measured with 25,000 channels: see the README),
// charged to its owner from mkdir to rmdir.
const channelCost = 1024

// The root's read-only file with the mount's usage and limits. It is
// found by name but not listed: the root lists channels only.
const (
	limitsName               = ".limits"
	limitsNode   fuse.NodeID = 2 // serial 0, kind 2: never a channel's (serials start at 1) nor a msg instance's
	limitsPerm               = 0o444
	fdHeadroom               = 64 // descriptors under RLIMIT_NOFILE not given to memfds
	fdReserveLen             = 8  // descriptors held for shutdown
)

// Errors of authority.
var (
	errNotOwnerCtl    = errors.New("only the channel's owner and root may write its ctl")
	errNotOwnerResize = errors.New("only the channel's owner and root may change the size of its shm")
	errLimitsFile     = errors.New(limitsName + " is the mount's read-only limits file")
)

// DefaultBudget returns the default limits for a daemon that may use mem
// bytes (its cgroup's memory limit, or physical memory):
//
//	max-memory    mem / 2 (rounded down to whole MiB)
//	user-memory   mem / 8 (rounded down to whole MiB)
//	max-channels  mem / 64 KiB, at least 64 and at most 1 Mi
//	user-channels max-channels / 4, at least 16
func DefaultBudget(mem int64) channels.BudgetLimits {
	maxCh := min(max(mem/(64<<10), 64), 1<<20)
	return channels.BudgetLimits{
		MaxChannels:  maxCh,
		UserChannels: max(maxCh/4, 16),
		MaxMemory:    mem / 2 &^ (1<<20 - 1), // whole MiB
		UserMemory:   mem / 8 &^ (1<<20 - 1),
	}
}

// DefaultGoMemLimit is the soft limit for the Go runtime (GOMEMLIMIT) of a
// daemon that may use mem bytes: 3/4 of it, so that the garbage collector
// works harder before queued messages and their garbage reach the cgroup's
// limit (queued messages and shm together are at most max-memory, mem/2).
func DefaultGoMemLimit(mem int64) int64 { return mem / 4 * 3 }

// limitsState is a server's limits and the state that enforces them.
type limitsState struct {
	budget  *channels.Budget
	files   *shmregion.FileLimit
	logs    *logLimiter
	reserve []int // descriptors held for shutdown; nil once given back
}

func newLimitsState(cfg Config) *limitsState {
	return &limitsState{
		budget: channels.NewBudget(cfg.Budget),
		files:  shmregion.NewFileLimit(memfdLimit()),
		logs:   newLogLimiter(logBurst, logRate),
	}
}

// memfdLimit is how many memfds the mount's regions may hold: the
// process's limit on open files (Go raises the soft limit to the hard one
// at start) less fdHeadroom.
func memfdLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return 0
	}
	return max(int(rl.Cur)-fdHeadroom, 16)
}

// holdReserve opens the descriptors kept for shutdown.
func (l *limitsState) holdReserve() {
	for range fdReserveLen {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		l.reserve = append(l.reserve, fd)
	}
}

// releaseReserve gives the reserved descriptors back (at shutdown).
func (l *limitsState) releaseReserve() {
	for _, fd := range l.reserve {
		unix.Close(fd)
	}
	l.reserve = nil
}

// newAccount counts a new channel of uid. Errors wrap channels.ErrNoSpace
// (ENOSPC) or channels.ErrQuota (EDQUOT).
func (s *Server) newAccount(name string, uid uint32) (*channels.Account, error) {
	a, err := s.lim.budget.NewAccount(uid, channelCost)
	if err != nil {
		return nil, fmt.Errorf("mkdir %q: %w", name, err)
	}
	return a, nil
}

// newChannelState makes a channel's queue and region, charged to a.
func (s *Server) newChannelState(a *channels.Account) (channels.Queue, *shmregion.Region, error) {
	queue, err := channels.NewInBudget(s.cfg.Limits, a)
	if err != nil {
		return nil, nil, err
	}
	region, err := s.newRegion(a)
	if err != nil {
		return nil, nil, err
	}
	return queue.Queue(), region, nil
}

// newRegion makes a channel's shm region, charged to a.
func (s *Server) newRegion(a *channels.Account) (*shmregion.Region, error) {
	return shmregion.NewWith(shmregion.Config{Max: s.cfg.ShmMax, Memory: a, Files: s.lim.files})
}

// dropAccount ends a channel's count and base charge (rmdir, or a mkdir
// that failed). Its queue and region release their own charges.
func dropAccount(a *channels.Account) {
	a.RemoveChannel()
	a.Release(channelCost)
}

// isOwner reports whether uid may act as c's owner. Requires Server.mu (read).
func isOwner(c *channel, uid uint32) bool { return uid == 0 || uid == c.uid }

// checkOpen refuses what only the owner may open: ctl for writing.
// Requires Server.mu (read).
func checkOpen(c *channel, k kind, write bool, uid uint32) error {
	if k == kindCtl && write && !isOwner(c, uid) {
		return fmt.Errorf("open ctl of %q for writing by uid %d (owner %d): %w", c.name, uid, c.uid, errNotOwnerCtl)
	}
	return nil
}

// checkResize refuses a change of shm's size by anyone but the owner.
// Requires Server.mu (read).
func checkResize(c *channel, k kind, uid uint32) error {
	if k == kindShm && !isOwner(c, uid) {
		return fmt.Errorf("resize shm of %q by uid %d (owner %d): %w", c.name, uid, c.uid, errNotOwnerResize)
	}
	return nil
}

// The limits file.

func (s *Server) limitsAttr() fuse.Attr {
	return fuse.Attr{
		Valid:     attrValid,
		Inode:     uint64(limitsNode),
		Mode:      limitsPerm,
		Nlink:     1,
		Uid:       s.uid,
		Gid:       s.gid,
		Atime:     s.started,
		Mtime:     time.Now(),
		Ctime:     s.started,
		BlockSize: 4096,
	}
}

// lookupLimits answers a LOOKUP of the limits file in the root.
func (s *Server) lookupLimits(r *fuse.LookupRequest) (*fuse.LookupResponse, error) {
	return &fuse.LookupResponse{Node: limitsNode, EntryValid: entryValid, Attr: s.limitsAttr()}, nil
}

// openLimits opens the limits file; what it shows depends on who opens it.
func (s *Server) openLimits(r *fuse.OpenRequest) error {
	if !r.Flags.IsReadOnly() {
		return fmt.Errorf("open %s for writing: %w", limitsName, errReadOnly)
	}
	uid := r.Uid
	h := &textHandle{generate: func() ([]byte, error) { return s.limitsText(uid), nil }}
	r.Respond(&fuse.OpenResponse{Handle: s.addHandle(h), Flags: fuse.OpenDirectIO})
	return nil
}

// limitsText is the limits file as uid reads it: the mount's usage and
// limits, then one line for each owner (root sees every uid, others
// their own).
func (s *Server) limitsText(uid uint32) []byte {
	b := s.lim.budget
	l, u := b.Limits(), b.Usage()
	var out []byte
	for _, kv := range []struct {
		key string
		val int64
	}{
		{"channels", u.Channels},
		{"max-channels", l.MaxChannels},
		{"user-channels", l.UserChannels},
		{"memory", u.Memory},
		{"max-memory", l.MaxMemory},
		{"user-memory", l.UserMemory},
		{"shm-files", int64(s.lim.files.InUse())},
		{"max-shm-files", int64(s.lim.files.Max())},
	} {
		out = appendKeyValue(out, kv.key, kv.val)
	}
	if uid == 0 {
		for _, uu := range b.UserUsages() {
			out = fmt.Appendf(out, "user %d channels %d memory %d\n", uu.Uid, uu.Channels, uu.Memory)
		}
	} else {
		uu := b.UserUsage(uid)
		out = fmt.Appendf(out, "user %d channels %d memory %d\n", uid, uu.Channels, uu.Memory)
	}
	return out
}

// Checks that keep the limits file's name for it.

// checkNewName refuses a channel named like the limits file.
func checkNewName(name string) error {
	if name == limitsName {
		return fmt.Errorf("%q: %w", name, errExists)
	}
	return nil
}

// logFlushInterval is how often summaries of suppressed log lines are
// written when the requests that caused them have stopped.
const logFlushInterval = 10 * time.Second

// flushLogSummaries writes, until the server stops, one line per uid
// whose failure lines were suppressed.
func (s *Server) flushLogSummaries() {
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.served:
			return // Shutdown writes the last summaries
		case now := <-t.C:
			s.logSuppressed(s.lim.logs.flush(now, false))
		}
	}
}

func (s *Server) logSuppressed(sup []suppressed) {
	for _, x := range sup {
		s.log.Log(context.Background(), x.level, fmt.Sprintf("suppressed %d similar lines", x.n), "uid", x.uid, "suppressed", x.n)
	}
}

// rlimitFiles is the process's limit on open files, for log lines.
func rlimitFiles() uint64 {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	return rl.Cur
}
