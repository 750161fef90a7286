package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/sirupsen/logrus"
	logrusslog "github.com/sirupsen/logrus/hooks/slog"
)

// logFlags are the logging flags every subcommand shares.
type logFlags struct {
	level  *string
	format *string
}

func addLogFlags(flags *flag.FlagSet) logFlags {
	return logFlags{
		level:  flags.String("log-level", "info", "debug, info, warn or error"),
		format: flags.String("log-format", "text", "text or json"),
	}
}

// logger builds the process's logger: logrus, configured here only, behind
// the slog API that the packages take.
func (f logFlags) logger() (*slog.Logger, error) {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	level, err := logrus.ParseLevel(*f.level)
	if err != nil || level > logrus.DebugLevel || level < logrus.ErrorLevel {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", *f.level)
	}
	l.SetLevel(level)
	switch *f.format {
	case "text":
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	case "json":
		l.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", *f.format)
	}
	return slog.New(logrusslog.NewHandler(l, nil)), nil
}
