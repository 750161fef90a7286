package fs

import (
	"errors"
	"io"
	"log/slog"
	"syscall"

	"github.com/ipcfs/ipcfs/channels"
	"github.com/ipcfs/ipcfs/ctl"
	"github.com/ipcfs/ipcfs/natschan"
	"github.com/ipcfs/ipcfs/shmregion"
)

// Errors of the tree itself.
var (
	errNotPermitted  = errors.New("not permitted in the ipcfs tree")
	errNoEntry       = errors.New("no such channel or file")
	errExists        = errors.New("channel exists")
	errNameTooLong   = errors.New("channel name longer than 255 bytes")
	errInterrupted   = errors.New("interrupted")
	errRemoved       = errors.New("channel removed")
	errReadOnly      = errors.New("file is read-only")
	errBadSize       = errors.New("size not supported for this file")
	errNoHandle      = errors.New("unknown file handle")
	errNotSupported  = errors.New("operation not supported")
	errPageCacheRead = errors.New("read through the page cache; use read(2)")
)

// errnoTable maps errors, with errors.Is, to the errno a caller sees and
// the level of the log line that says so. Expected outcomes of normal use
// log at debug; what a user did wrong, at warn.
var errnoTable = []struct {
	err   error
	errno syscall.Errno
	level slog.Level
}{
	{channels.ErrWouldBlock, syscall.EAGAIN, slog.LevelDebug},
	{errInterrupted, syscall.EINTR, slog.LevelDebug},
	{errNoEntry, syscall.ENOENT, slog.LevelDebug},
	{channels.ErrHungUp, syscall.EPIPE, slog.LevelDebug},
	{channels.ErrClosed, syscall.EPIPE, slog.LevelDebug},
	{errRemoved, syscall.EIO, slog.LevelDebug},
	{errNotSupported, syscall.EOPNOTSUPP, slog.LevelDebug},
	{errPageCacheRead, syscall.EINVAL, slog.LevelDebug},
	{errNotPermitted, syscall.EPERM, slog.LevelWarn},
	{errExists, syscall.EEXIST, slog.LevelWarn},
	{errNameTooLong, syscall.ENAMETOOLONG, slog.LevelWarn},
	{errReadOnly, syscall.EACCES, slog.LevelWarn},
	{errBadSize, syscall.EINVAL, slog.LevelWarn},
	{channels.ErrEmptyMessage, syscall.EINVAL, slog.LevelWarn},
	{channels.ErrBadLimits, syscall.EINVAL, slog.LevelWarn},
	{ctl.ErrSyntax, syscall.EINVAL, slog.LevelWarn},
	{shmregion.ErrTooLarge, syscall.EFBIG, slog.LevelWarn},
	{shmregion.ErrNegative, syscall.EINVAL, slog.LevelWarn},
	{shmregion.ErrClosed, syscall.EIO, slog.LevelWarn},
	{errNoHandle, syscall.EBADF, slog.LevelWarn},
	{channels.ErrNoSpace, syscall.ENOSPC, slog.LevelWarn},
	{channels.ErrQuota, syscall.EDQUOT, slog.LevelWarn},
	{shmregion.ErrNoFiles, syscall.ENOSPC, slog.LevelWarn},
	{errNotOwnerCtl, syscall.EACCES, slog.LevelWarn},
	{errNotOwnerResize, syscall.EPERM, slog.LevelWarn},
	{errLimitsFile, syscall.EPERM, slog.LevelWarn},
	{natschan.ErrExists, syscall.EEXIST, slog.LevelWarn},
	{natschan.ErrNotFound, syscall.ENOENT, slog.LevelDebug},
	{natschan.ErrUnavailable, syscall.EIO, slog.LevelWarn},
	{natschan.ErrConflict, syscall.EIO, slog.LevelWarn},
	{io.EOF, syscall.EIO, slog.LevelError}, // EOF is answered as 0 bytes; reaching here is a bug
}

// toErrno returns the errno for err and the level to log it at. Errors it
// does not know become EIO, logged as errors.
func toErrno(err error) (syscall.Errno, slog.Level) {
	for _, e := range errnoTable {
		if errors.Is(err, e.err) {
			return e.errno, e.level
		}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno, slog.LevelWarn
	}
	return syscall.EIO, slog.LevelError
}
