package fs

import (
	"fmt"
	"strings"
	"sync"

	"github.com/ipcfs/ipcfs/ctl"
)

// textHandle is an open file whose content is generated: a snapshot taken
// when reading starts at offset 0 (so `cat` sees one consistent state and
// a reader that preads offset 0 again sees a fresh one).
type textHandle struct {
	generate func() ([]byte, error)

	mu   sync.Mutex // guards snap
	snap []byte     // GUARDED_BY(mu)
}

var (
	_ reader     = (*textHandle)(nil)
	_ directFile = (*textHandle)(nil)
)

func (t *textHandle) directIO() {}

func (t *textHandle) readAt(off int64, size int) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if off == 0 || t.snap == nil {
		snap, err := t.generate()
		if err != nil {
			return nil, err
		}
		t.snap = snap
	}
	return window(t.snap, off, size), nil
}

func (t *textHandle) release() {}

// ctlHandle is an open ctl file: settings out, commands in.
type ctlHandle struct {
	textHandle
	s *Server
	c *channel
}

var _ writer = (*ctlHandle)(nil)

func newCtlHandle(s *Server, c *channel) *ctlHandle {
	h := &ctlHandle{s: s, c: c}
	h.generate = func() ([]byte, error) { return ctlText(c) }
	return h
}

// generatedText returns the content of a channel's ctl or status file now.
func generatedText(c *channel, k kind) ([]byte, error) {
	if k == kindCtl {
		return ctlText(c)
	}
	return statusText(c)
}

// ctlText is what ctl reads back: the channel's settings.
func ctlText(c *channel) ([]byte, error) {
	if c.removed.Load() {
		return nil, errRemoved
	}
	st := c.queue.Stats()
	return ctl.Settings{QueueBytes: st.MaxBytes, QueueMsgs: st.MaxMsgs, HungUp: st.HungUp}.Format(), nil
}

// writeAt carries out the commands of one write, all or none: a bad line
// fails the whole write before anything changes.
func (h *ctlHandle) writeAt(data []byte, _ int64) (int, error) {
	name := h.s.nameOf(h.c)
	if h.c.removed.Load() {
		return 0, fmt.Errorf("ctl of channel %q: %w", name, errRemoved)
	}
	cmds, err := ctl.Parse(data)
	if err != nil {
		return 0, fmt.Errorf("ctl of channel %q: %w", name, err)
	}
	q := h.c.queue
	for _, cmd := range cmds {
		switch cmd.Op {
		case ctl.Hangup:
			q.Hangup()
		case ctl.Reopen:
			q.Reopen()
		case ctl.Flush:
			n := q.Flush()
			h.s.log.Info("ctl: flushed", "channel", name, "discarded_messages", n)
			continue
		case ctl.QueueBytes, ctl.QueueMsgs:
			l := q.Limits()
			if cmd.Op == ctl.QueueBytes {
				l.MaxBytes = cmd.Arg
			} else {
				l.MaxMsgs = cmd.Arg
			}
			if err := q.SetLimits(l); err != nil {
				return 0, fmt.Errorf("ctl of channel %q: %w", name, err)
			}
		}
		h.s.log.Info("ctl", "channel", name, "command", cmd.Op.String(), "arg", cmd.Arg)
	}
	return len(data), nil
}

// newStatusHandle opens a channel's status file.
func newStatusHandle(s *Server, c *channel) *textHandle {
	return &textHandle{generate: func() ([]byte, error) { return statusText(c) }}
}

// statusText is what status reads: the channel's counters.
func statusText(c *channel) ([]byte, error) {
	if c.removed.Load() {
		return nil, errRemoved
	}
	st := c.queue.Stats()
	var b strings.Builder
	for _, kv := range []struct {
		key string
		val any
	}{
		{"messages", st.Messages},
		{"bytes", st.Bytes},
		{"readers", st.Readers},
		{"writers", st.Writers},
		{"blocked_readers", st.BlockedReaders},
		{"blocked_writers", st.BlockedWriters},
		{"sent", st.Sent},
		{"received", st.Received},
		{"truncated", st.Truncated},
		{"shm_size", c.shm.Size()},
		{"hungup", st.HungUp},
	} {
		fmt.Fprintf(&b, "%s %v\n", kv.key, kv.val)
	}
	return []byte(b.String()), nil
}
