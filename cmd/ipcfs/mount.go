package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ipcfs/ipcfs/channels"
	"github.com/ipcfs/ipcfs/fs"
	"github.com/ipcfs/ipcfs/internal/size"
)

func mountCmd(args []string) int {
	flags := flag.NewFlagSet("ipcfs mount", flag.ContinueOnError)
	flags.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: ipcfs mount [flags] MOUNTPOINT")
		flags.PrintDefaults()
	}
	allowOther := flags.Bool("allow-other", false, "let other users (and containers running as other uids) enter; the permission bits decide")
	queueBytes := &size.Value{N: 16 << 20}
	queueMsgs := &size.Value{N: 4096}
	shmMax := &size.Value{N: 1 << 30}
	flags.Var(queueBytes, "queue-bytes", "capacity of one channel's message queue, in bytes (K, M, G suffixes)")
	flags.Var(queueMsgs, "queue-msgs", "capacity of one channel's message queue, in messages")
	flags.Var(shmMax, "shm-max", "largest shared region of one channel (K, M, G suffixes)")
	logOpts := addLogFlags(flags)
	mountpoint, err := parseWithOperand(flags, args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipcfs mount:", err)
		return 2
	}
	log, err := logOpts.logger()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipcfs mount:", err)
		return 2
	}

	srv, err := fs.Mount(fs.Config{
		Mountpoint: mountpoint,
		AllowOther: *allowOther,
		Limits:     channels.Limits{MaxBytes: queueBytes.N, MaxMsgs: queueMsgs.N},
		ShmMax:     shmMax.N,
		Logger:     log,
	})
	if err != nil {
		log.Error("mount failed", "err", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	served := make(chan struct{})
	go func() {
		srv.Serve()
		close(served)
	}()
	log.Info("mounted", "mountpoint", srv.Mountpoint())

	select {
	case sig := <-sigs:
		log.Info("signal received, unmounting", "signal", sig.String())
		srv.Shutdown()
	case <-served:
		log.Info("unmounted from outside")
	}
	log.Info("exiting")
	return 0
}

// parseWithOperand parses flags that may come before or after the one
// operand, MOUNTPOINT.
func parseWithOperand(flags *flag.FlagSet, args []string) (string, error) {
	if err := flags.Parse(args); err != nil {
		return "", err
	}
	if flags.NArg() == 0 {
		flags.Usage()
		return "", fmt.Errorf("missing MOUNTPOINT")
	}
	operand := flags.Arg(0)
	if err := flags.Parse(flags.Args()[1:]); err != nil {
		return "", err
	}
	if flags.NArg() > 0 {
		return "", fmt.Errorf("unexpected arguments after MOUNTPOINT: %q", flags.Args())
	}
	return operand, nil
}
