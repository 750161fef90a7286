package fs

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"bazil.org/fuse"

	"github.com/ipcfs/ipcfs/ctl"
)

// textHandle is an open file whose content is generated (ctl, status, and
// directories' listings, read by READDIR): a snapshot taken
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

// ctlHandle is an open ctl file: settings out, commands in. After a write
// failed, reads start with one line "error: REASON" (what the log says)
// until a write succeeds.
type ctlHandle struct {
	textHandle
	s *Server
	c *channel

	errMu   sync.Mutex // guards lastErr
	lastErr string     // GUARDED_BY(errMu): why the last write failed; "" after a success
}

var _ requestWriter = (*ctlHandle)(nil)

func newCtlHandle(s *Server, c *channel) *ctlHandle {
	h := &ctlHandle{s: s, c: c}
	h.generate = h.settings
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

// settings is what this open ctl file reads: after a failed write, the
// error line, then ctlText.
func (h *ctlHandle) settings() ([]byte, error) {
	text, err := ctlText(h.c)
	if err != nil {
		return nil, err
	}
	h.errMu.Lock()
	defer h.errMu.Unlock()
	if h.lastErr != "" {
		return append([]byte("error: "+h.lastErr+"\n"), text...), nil
	}
	return text, nil
}

// write carries out the commands of one write, all or none, and logs each
// with the sender's uid and pid. A failure is kept for the next reads of
// this open file.
func (h *ctlHandle) write(req *fuse.WriteRequest) error {
	err := h.apply(req.Data, req.Uid, req.Pid)
	msg := ""
	if err != nil {
		msg = strings.ReplaceAll(err.Error(), "\n", " ")
	}
	h.errMu.Lock()
	h.lastErr = msg
	h.errMu.Unlock()
	if err != nil {
		return err
	}
	req.Respond(&fuse.WriteResponse{Size: len(req.Data)})
	return nil
}

// apply carries out the commands of one write, all or none: a bad line
// fails the whole write before anything changes.
func (h *ctlHandle) apply(data []byte, uid, pid uint32) error {
	name := h.s.nameOf(h.c)
	if h.c.removed.Load() {
		return fmt.Errorf("ctl of channel %q: %w", name, errRemoved)
	}
	cmds, err := ctl.Parse(data)
	if err != nil {
		return fmt.Errorf("ctl of channel %q: %w", name, err)
	}
	q := h.c.queue
	for _, cmd := range cmds {
		switch cmd.Op {
		case ctl.Hangup:
			if err := q.Hangup(); err != nil {
				return fmt.Errorf("ctl of channel %q: hangup: %w", name, err)
			}
		case ctl.Reopen:
			if err := q.Reopen(); err != nil {
				return fmt.Errorf("ctl of channel %q: reopen: %w", name, err)
			}
		case ctl.Flush:
			n, err := q.Flush()
			if err != nil {
				return fmt.Errorf("ctl of channel %q: flush: %w", name, err)
			}
			h.s.log.Info("ctl: flushed", "channel", name, "command", cmd.Op.String(), "uid", uid, "pid", pid, "discarded_messages", n)
			continue
		case ctl.QueueBytes, ctl.QueueMsgs:
			l := q.Stats().Limits
			if cmd.Op == ctl.QueueBytes {
				l.MaxBytes = cmd.Arg
			} else {
				l.MaxMsgs = cmd.Arg
			}
			if err := q.SetLimits(l); err != nil {
				return fmt.Errorf("ctl of channel %q: %w", name, err)
			}
		}
		h.s.log.Info("ctl", "channel", name, "command", cmd.String(), "uid", uid, "pid", pid)
	}
	return nil
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
	// Appended by hand, not with fmt: a pread of status is the cheapest
	// request there is, and ipcfs bench times it.
	b := make([]byte, 0, 256)
	for _, kv := range []struct {
		key string
		val int64
	}{
		{"messages", st.Messages},
		{"bytes", st.Bytes},
		{"readers", st.Readers},
		{"writers", st.Writers},
		{"blocked_readers", st.BlockedReaders},
		{"blocked_writers", st.BlockedWriters},
		{"sent", int64(st.Sent)},
		{"received", int64(st.Received)},
		{"truncated", int64(st.Truncated)},
		{"shm_size", c.shm.Size()},
	} {
		b = appendKeyValue(b, kv.key, kv.val)
	}
	b = strconv.AppendBool(append(b, "hungup "...), st.HungUp)
	b = append(b, '\n')
	b = appendKeyValue(b, "memory", c.acct.Memory())
	if q := c.shared(); q != nil {
		b = append(append(append(b, "stream "...), q.Stream()...), '\n')
	}
	return b, nil
}

// appendKeyValue appends one "key value" line of a generated file.
func appendKeyValue(b []byte, key string, val int64) []byte {
	return append(strconv.AppendInt(append(append(b, key...), ' '), val, 10), '\n')
}
