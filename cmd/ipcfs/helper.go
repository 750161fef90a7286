package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"

	"github.com/ipcfs/ipcfs/internal/daemonize"
	"github.com/ipcfs/ipcfs/internal/mountopts"
)

// background is the mount(8) form, `ipcfs SOURCE MOUNTPOINT -o OPTIONS`
// (what mount.fuse3 runs for `mount -t fuse.ipcfs` and fstab): it turns
// the options into the flags of `ipcfs mount`, starts that as a daemon and
// exits 0 once the mount is ready, or 1 with the daemon's reason.
func background(flags *flag.FlagSet, args []string, logOpts logFlags) int {
	h, err := mountopts.ParseHelper(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipcfs:", err)
		return 2
	}
	flagArgs, err := mountopts.ToArgs(flags, h.Options)
	if err == nil {
		err = flags.Parse(flagArgs)
	}
	if err == nil {
		err = logOpts.check()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipcfs: -o:", err)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipcfs:", err)
		return 1
	}
	cmd := exec.Command(exe, append(append([]string{"mount"}, flagArgs...), h.Mountpoint)...)
	cmd.Env = mountopts.DaemonEnv(os.Environ())
	warnings, err := daemonize.Start(cmd)
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "ipcfs: warning:", w)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipcfs:", err)
		return 1
	}
	return 0
}
