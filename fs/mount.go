package fs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"bazil.org/fuse"
	"golang.org/x/sys/unix"

	"github.com/ipcfs/ipcfs/internal/mountinfo"
)

// Mount mounts a new ipcfs at cfg.Mountpoint, creating the directory if
// missing and clearing a dead FUSE mount left there by a killed daemon. It
// returns once the kernel has initialized the mount; call Serve to answer
// requests and Shutdown to end.
func Mount(cfg Config) (*Server, error) {
	if cfg.Limits.MaxBytes < 1 || cfg.Limits.MaxMsgs < 1 || cfg.ShmMax < 0 {
		return nil, fmt.Errorf("mount: queue limits must be at least 1 and shm-max at least 0")
	}
	if b := cfg.Budget; b.MaxChannels < 0 || b.UserChannels < 0 || b.MaxMemory < 0 || b.UserMemory < 0 {
		return nil, fmt.Errorf("mount: channel and memory limits must be at least 0 (0: none)")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		return nil, fmt.Errorf("mount: fusermount3 not found (install the fuse3 package): %w", err)
	}
	mnt, err := filepath.Abs(cfg.Mountpoint)
	if err != nil {
		return nil, fmt.Errorf("mount: %w", err)
	}
	cfg.Mountpoint = mnt
	s := newServer(cfg, nil)
	if err := s.prepareMountpoint(); err != nil {
		return nil, err
	}

	opts := []fuse.MountOption{
		fuse.FSName("ipcfs"),
		fuse.Subtype("ipcfs"),
		fuse.DefaultPermissions(),
		fuse.MaxReadahead(128 << 10), // page-ins of shm in 128 KiB, not 4 KiB
	}
	if cfg.AllowOther {
		opts = append(opts, fuse.AllowOther())
	}
	if cfg.Passthrough {
		opts = append(opts, fuse.Passthrough())
	}
	conn, err := fuse.Mount(mnt, opts...)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mnt, err)
	}
	s.conn = conn
	if cfg.NATS != nil {
		// Loaded before Serve: requests wait in the kernel until then, so
		// the first sees every channel. The watch's later changes need
		// s.conn (invalidations): it is set.
		if err := s.watchNamespace(); err != nil {
			fuse.Unmount(mnt)
			conn.Close()
			return nil, err
		}
	}
	if !cfg.StrictDirtyLimit && !conn.Passthrough() {
		s.liftDirtyLimit()
	}
	s.lim.holdReserve()
	go s.flushLogSummaries()
	b := cfg.Budget
	s.log.Debug("limits", "max_channels", b.MaxChannels, "user_channels", b.UserChannels,
		"max_memory", b.MaxMemory, "user_memory", b.UserMemory,
		"max_shm_files", s.lim.files.Max(), "rlimit_nofile", rlimitFiles())
	return s, nil
}

// liftDirtyLimit lets the mount's dirty pages (stores into mapped shm
// regions waiting to be written back) grow like a disk filesystem's,
// instead of the 1% share the kernel gives a FUSE mount by default, which
// throttles stores into a region of more than ~50 MB to a trickle. It
// needs root; without it the kernel's limit stays, with a debug line.
func (s *Server) liftDirtyLimit() {
	m, ok, err := mountinfo.Find(s.cfg.Mountpoint)
	if err != nil || !ok {
		s.log.Debug("dirty-page limit left as is: mount not found", "err", err)
		return
	}
	dir := filepath.Join("/sys/class/bdi", m.Device)
	for _, knob := range []struct{ name, value string }{
		{"strict_limit", "0"},
		{"max_ratio", "100"},
	} {
		if err := os.WriteFile(filepath.Join(dir, knob.name), []byte(knob.value), 0); err != nil {
			s.log.Debug("dirty-page limit left as is", "knob", knob.name, "err", err)
			return
		}
	}
	s.log.Debug("dirty-page limit lifted", "bdi", m.Device)
}

// prepareMountpoint creates the mountpoint, or clears a dead FUSE mount
// left on it by a killed daemon, or refuses a live FUSE mount. Any other
// mount there (a bind mount of the directory onto itself, made to share
// it with containers) is mounted over, as mount(8) would.
func (s *Server) prepareMountpoint() error {
	mnt := s.cfg.Mountpoint
	m, mounted, err := mountinfo.Find(mnt)
	if err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	if mounted && strings.HasPrefix(m.FSType, "fuse") {
		// statfs always reaches the daemon (stat may be answered from the
		// kernel's attribute cache, even for a daemon killed just now).
		var st unix.Statfs_t
		err := unix.Statfs(mnt, &st)
		dead := errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED)
		if !dead {
			return fmt.Errorf("mount: %s is already a live FUSE mount (%s): unmount it first", mnt, m.FSType)
		}
		s.log.Warn("clearing a dead FUSE mount (transport endpoint is not connected)", "mountpoint", mnt, "fstype", m.FSType)
		if out, err := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput(); err != nil {
			return fmt.Errorf("mount: clearing the dead mount at %s: %v: %s", mnt, err, strings.TrimSpace(string(out)))
		}
	}
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	return nil
}

// Shutdown answers every waiting request (readers get end of file, writers
// EPIPE), unmounts (lazily if the mount is busy) and waits briefly for the
// serving loops to end. After it returns the process may exit; it must not
// close the FUSE connection, which blocks after a lazy unmount.
func (s *Server) Shutdown() {
	// Unmounting execs fusermount3: it needs descriptors even if the
	// regions took every other one.
	s.lim.releaseReserve()
	s.mu.RLock()
	live := make([]*channel, 0, len(s.channels))
	for _, c := range s.channels {
		live = append(live, c)
	}
	s.mu.RUnlock()
	discarded := 0
	for _, c := range live {
		discarded += c.queue.Close()
	}
	s.log.Info("shutting down", "channels", len(live), "discarded_messages", discarded)

	mnt := s.cfg.Mountpoint
	if err := fuse.Unmount(mnt); err != nil {
		s.log.Info("mount busy, unmounting lazily", "mountpoint", mnt, "err", err)
		if out, err := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput(); err != nil {
			s.log.Error("lazy unmount failed", "mountpoint", mnt, "err", err, "output", strings.TrimSpace(string(out)))
		}
	}
	select {
	case <-s.served:
	case <-time.After(2 * time.Second):
		s.log.Info("mount still in use after lazy unmount; its open files fail once this process exits")
	}
	s.logSuppressed(s.lim.logs.flush(time.Now(), true))
}

// ShmPath says how processes' mappings of shm are served: "passthrough"
// (the kernel maps each region's memory file) or "page cache" (the mount's
// page cache, filled and written back through the daemon).
func (s *Server) ShmPath() string {
	if s.conn.Passthrough() {
		return "passthrough"
	}
	return "page cache"
}

// Mountpoint returns the absolute path the server is mounted on.
func (s *Server) Mountpoint() string { return s.cfg.Mountpoint }
