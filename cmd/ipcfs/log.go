package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"log/syslog"
	"os"
	"strings"

	"bazil.org/fuse"
	"github.com/sirupsen/logrus"
	logrusslog "github.com/sirupsen/logrus/hooks/slog"
	logrussyslog "github.com/sirupsen/logrus/hooks/syslog"
	"golang.org/x/sys/unix"
)

// logFlags are the logging flags of `ipcfs mount`.
type logFlags struct {
	level  *string
	format *string
	file   *string
}

func addLogFlags(flags *flag.FlagSet) logFlags {
	return logFlags{
		level:  flags.String("log-level", "info", "debug, info, warn or error"),
		format: flags.String("log-format", "text", "text or json"),
		file:   flags.String("log-file", "", "append the log (and any crash report) to `FILE` instead of stderr"),
	}
}

// check validates the flags without opening anything.
func (f logFlags) check() error {
	_, _, err := f.levelAndFormat()
	return err
}

func (f logFlags) levelAndFormat() (logrus.Level, logrus.Formatter, error) {
	level, err := logrus.ParseLevel(*f.level)
	if err != nil || level > logrus.DebugLevel || level < logrus.ErrorLevel {
		return 0, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", *f.level)
	}
	switch *f.format {
	case "text":
		return level, &logrus.TextFormatter{FullTimestamp: true, DisableColors: true}, nil
	case "json":
		return level, &logrus.JSONFormatter{}, nil
	}
	return 0, nil, fmt.Errorf("--log-format %q: want text or json", *f.format)
}

// logger builds the process's logger: logrus, configured here only, behind
// the slog API that the packages take. It writes to stderr, which
// --log-file replaces; with toSyslog and no --log-file it writes to
// syslog (the journal under systemd) instead, or, when there is no syslog,
// nowhere, and warning says so. The log lines of bazil.org/fuse go
// through it too.
func (f logFlags) logger(toSyslog bool) (log *slog.Logger, warning string, err error) {
	level, formatter, err := f.levelAndFormat()
	if err != nil {
		return nil, "", err
	}
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(level)
	l.SetFormatter(formatter)
	switch {
	case *f.file != "":
		file, err := os.OpenFile(*f.file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, "", fmt.Errorf("--log-file: %w", err)
		}
		// Onto stderr, so that a crash report lands in the file too.
		if err := unix.Dup2(int(file.Fd()), 2); err != nil {
			return nil, "", fmt.Errorf("--log-file: %w", err)
		}
		file.Close()
	case toSyslog:
		hook, err := logrussyslog.NewSyslogHook("", "", syslog.LOG_DAEMON|syslog.LOG_INFO, "ipcfs")
		if err != nil {
			warning = fmt.Sprintf("no syslog (%v): the daemon logs nothing; use -o log_file=FILE", err)
		} else {
			l.AddHook(hook)
		}
		l.SetOutput(io.Discard)
	}
	log = slog.New(logrusslog.NewHandler(l, nil))
	routeFuseLogs(log)
	return log, warning, nil
}

// routeFuseLogs sends bazil.org/fuse's debug messages (unusual requests
// and replies: its protocol traces are not used by ipcfs) and its
// standard-library log lines (fusermount3's output) to log.
func routeFuseLogs(log *slog.Logger) {
	fuse.Debug = func(msg any) {
		if log.Enabled(context.Background(), slog.LevelDebug) {
			log.Debug("fuse", "component", "bazil.org/fuse", "event", fmt.Sprint(msg))
		}
	}
	stdlog.SetFlags(0)
	stdlog.SetOutput(lineWriter{log})
}

// lineWriter logs what the standard library's log package writes, a
// line at a time, at warn.
type lineWriter struct{ log *slog.Logger }

func (w lineWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.log.Warn(line, "component", "bazil.org/fuse")
	}
	return len(p), nil
}
