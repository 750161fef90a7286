package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"bazil.org/fuse"

	"github.com/ipcfs/ipcfs/channels"
	"github.com/ipcfs/ipcfs/natschan"
)

// A mount joined to NATS (Config.NATS) keeps its namespace and its
// channels' queues there (package natschan): mkdir, rmdir, mv, chmod and
// chown change the shared namespace first and this tree after; changes
// other daemons make arrive through natschan's Watch and are applied here
// (applyEvent). shm regions stay local.
//
// Every request that talks to NATS (namespace changes, ctl and status,
// a lookup of a name this daemon does not know yet) runs on a goroutine
// of its own, not on a serving loop: NATS may take its timeout to answer.

// watchNamespace loads the shared namespace into the tree and keeps it
// in step. Called once, before the mount serves.
func (s *Server) watchNamespace() error {
	err := s.cfg.NATS.Watch(context.Background(), s.applyEvent)
	if err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	s.mu.RLock()
	n := len(s.names)
	s.mu.RUnlock()
	s.log.Info("joined NATS namespace", "prefix", s.cfg.NATS.Prefix(), "channels", n)
	go func() {
		if _, err := s.cfg.NATS.Sweep(); err != nil {
			s.log.Warn("sweeping orphan channel streams failed", "err", err)
		}
	}()
	return nil
}

// waitsForNATS reports whether req may wait for NATS, so that it must not
// run on a serving loop.
func (s *Server) waitsForNATS(req fuse.Request) bool {
	switch r := req.(type) {
	case *fuse.MkdirRequest, *fuse.RemoveRequest, *fuse.RenameRequest, *fuse.SetattrRequest:
		return true
	case *fuse.LookupRequest:
		if r.Node != fuse.RootID {
			return false
		}
		s.mu.RLock()
		_, known := s.names[r.Name]
		s.mu.RUnlock()
		return !known
	case *fuse.ReadRequest:
		return s.isTextHandle(r.Handle)
	case *fuse.WriteRequest:
		return s.isTextHandle(r.Handle)
	}
	return false
}

// isTextHandle reports whether id is an open ctl, status or directory.
func (s *Server) isTextHandle(id fuse.HandleID) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch s.handles[id].(type) {
	case *ctlHandle, *textHandle:
		return true
	}
	return false
}

// applyEvent applies a change of the shared namespace: a channel made,
// changed (owner, mode, name, settings) or removed by some daemon.
func (s *Server) applyEvent(ev natschan.Event) {
	if ev.Removed {
		s.mu.Lock()
		c, ok := s.names[ev.Name]
		if !ok || c.shared() == nil {
			s.mu.Unlock()
			return
		}
		freeShm := s.removeLocked(c)
		s.mu.Unlock()
		s.finishRemove(c, freeShm)
		go s.uncacheFiles(c)
		go s.uncacheEntry(ev.Name) // the kernel would keep finding it for entryValid
		s.log.Debug("channel removed by another daemon", "channel", ev.Name)
		return
	}
	rec := ev.Record
	s.mu.Lock()
	c, known := s.byID[rec.ID]
	var stale *channel
	var staleFree bool
	if other, ok := s.names[rec.Name]; ok && other != c {
		// Its removal (or rename) came first in the namespace and this
		// daemon has not applied it yet: it is gone.
		stale, staleFree = other, s.removeLocked(other)
	}
	var oldName string
	ownerChanged := false
	if !known {
		var err error
		if c, err = s.adoptLocked(rec, s.lim.budget.Adopt(rec.Uid, channelCost)); err != nil {
			s.mu.Unlock()
			if stale != nil {
				s.finishRemove(stale, staleFree)
				go s.uncacheFiles(stale)
			}
			s.log.Error("a channel of the namespace cannot be served here", "channel", rec.Name, "err", err)
			return
		}
	} else {
		if c.name != rec.Name {
			oldName = c.name
			delete(s.names, c.name)
			s.names[rec.Name] = c
			c.name = rec.Name
		}
		perm := os.FileMode(rec.Mode).Perm()
		if c.uid != rec.Uid || c.gid != rec.Gid || c.perm != perm {
			ownerChanged = true
			c.uid, c.gid, c.perm, c.changed = rec.Uid, rec.Gid, perm, rec.Changed
			c.acct.SetOwner(rec.Uid)
		}
	}
	s.mu.Unlock()
	if stale != nil {
		s.finishRemove(stale, staleFree)
		go s.uncacheFiles(stale)
		go s.uncacheEntry(rec.Name)
	}
	c.shared().Apply(rec)
	if oldName != "" {
		go s.uncacheEntry(oldName)
	}
	if ownerChanged && s.conn != nil {
		go s.invalidateFiles(c)
	}
}

// adoptLocked adds the channel rec describes to the tree, charged to a.
// Requires Server.mu.
func (s *Server) adoptLocked(rec natschan.Record, a *channels.Account) (*channel, error) {
	region, err := s.newRegion(a)
	if err != nil {
		dropAccount(a)
		return nil, err
	}
	q := s.cfg.NATS.Queue(rec)
	c := &channel{
		queue:   q,
		shm:     region,
		acct:    a,
		created: rec.Created,
		name:    rec.Name,
		uid:     rec.Uid,
		gid:     rec.Gid,
		perm:    os.FileMode(rec.Mode).Perm(),
		changed: rec.Changed,
	}
	s.nextSerial++
	c.serial = s.nextSerial
	s.names[rec.Name] = c
	s.channels[c.serial] = c
	s.byID[rec.ID] = c
	return c, nil
}

// uncacheEntry makes the kernel forget the root's entry name (a channel
// renamed or removed by another daemon).
func (s *Server) uncacheEntry(name string) {
	if s.conn == nil {
		return
	}
	if err := s.conn.InvalidateEntry(fuse.RootID, name); err != nil && !errors.Is(err, fuse.ErrNotCached) {
		s.log.Debug("invalidating a root entry failed", "name", name, "err", err)
	}
}

// mkdirNATS creates a channel in the shared namespace, then here.
func (s *Server) mkdirNATS(r *fuse.MkdirRequest) error {
	s.mu.RLock()
	_, taken := s.names[r.Name]
	s.mu.RUnlock()
	if taken {
		return fmt.Errorf("mkdir %q: %w", r.Name, errExists)
	}
	acct, err := s.newAccount(r.Name, r.Uid) // this mount's limits
	if err != nil {
		return err
	}
	now := time.Now()
	rec, err := s.cfg.NATS.Create(natschan.Record{
		Name: r.Name, Uid: r.Uid, Gid: r.Gid, Mode: uint32(r.Mode.Perm()),
		Created: now, Changed: now, Limits: s.cfg.Limits,
	})
	if err != nil {
		dropAccount(acct)
		return fmt.Errorf("mkdir %q: %w", r.Name, err)
	}
	s.mu.Lock()
	c, known := s.byID[rec.ID]
	if known {
		dropAccount(acct) // the watch applied it first, with an account of its own
	} else {
		if other, ok := s.names[rec.Name]; ok {
			freeShm := s.removeLocked(other)
			defer func() { s.finishRemove(other, freeShm); go s.uncacheFiles(other) }()
		}
		if c, err = s.adoptLocked(rec, acct); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("mkdir %q: %w", r.Name, err)
		}
	}
	resp := s.mkdirResponseLocked(c)
	s.mu.Unlock()
	s.log.Debug("channel created", "channel", r.Name, "uid", r.Uid, "gid", r.Gid, "mode", c.perm, "stream", c.shared().Stream())
	r.Respond(resp)
	return nil
}

// removeNATS removes a channel from the shared namespace, then here.
func (s *Server) removeNATS(r *fuse.RemoveRequest) error {
	discarded, err := s.cfg.NATS.Remove(r.Name)
	if err != nil {
		return fmt.Errorf("rmdir %q: %w", r.Name, err)
	}
	s.mu.Lock()
	c, ok := s.names[r.Name]
	var freeShm bool
	if ok {
		freeShm = s.removeLocked(c)
	}
	s.mu.Unlock()
	if ok {
		s.finishRemove(c, freeShm)
	}
	defer func() {
		if ok {
			go s.uncacheFiles(c) // after the answer, as remove's
		}
	}()
	level := s.log.Debug
	if discarded > 0 {
		level = s.log.Info
	}
	level("channel removed", "channel", r.Name, "discarded_messages", discarded)
	r.Respond()
	return nil
}

// renameNATS renames a channel in the shared namespace, then here.
func (s *Server) renameNATS(oldName, newName string) error {
	if err := s.cfg.NATS.Rename(oldName, newName); err != nil {
		return fmt.Errorf("rename %q to %q: %w", oldName, newName, err)
	}
	if err := s.renameLocked(oldName, newName); err != nil {
		s.log.Debug("rename: applied by the namespace watch first", "from", oldName, "to", newName, "err", err)
	}
	return nil
}

// setOwnerShared records a chmod/chown of a channel directory in the
// shared namespace; setattr then applies it here.
func (s *Server) setOwnerShared(r *fuse.SetattrRequest) error {
	s.mu.RLock()
	c, k, err := s.channelOf(r.Node)
	name := ""
	if err == nil {
		name = c.name
	}
	s.mu.RUnlock()
	if err != nil || k != kindDir || c.shared() == nil {
		return nil // setattr refuses it, or it is not shared
	}
	_, err = s.cfg.NATS.Update(name, func(rec *natschan.Record) error {
		if rec.ID != c.shared().ID() {
			return fmt.Errorf("%q was replaced: %w", name, errNoEntry)
		}
		if r.Valid.Mode() {
			rec.Mode = uint32(r.Mode.Perm())
		}
		if r.Valid.Uid() {
			rec.Uid = r.Uid
		}
		if r.Valid.Gid() {
			rec.Gid = r.Gid
		}
		rec.Changed = time.Now()
		return nil
	})
	if err != nil {
		return fmt.Errorf("chmod/chown of %q: %w", name, err)
	}
	return nil
}

// lookupNATS asks the namespace for a name this daemon does not know (yet:
// another daemon may have just made it), then looks it up here again.
func (s *Server) lookupNATS(r *fuse.LookupRequest) (*fuse.LookupResponse, error) {
	rec, err := s.cfg.NATS.Get(r.Name)
	if err == nil {
		s.applyEvent(natschan.Event{Name: r.Name, Record: rec})
	} else if !errors.Is(err, natschan.ErrNotFound) {
		s.log.Debug("lookup: the namespace did not answer; using this daemon's view", "name", r.Name, "err", err)
	}
	return s.lookupLocked(r)
}
