package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ipcfs/ipcfs/internal/listing"
	"github.com/ipcfs/ipcfs/internal/mountinfo"
)

// lsCmd is `ipcfs ls [--json] [MOUNTPOINT...]`: every channel of the named
// mounts, or of every ipcfs mount in /proc/self/mountinfo.
func lsCmd(args []string) int {
	flags := flag.NewFlagSet("ipcfs ls", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	asJSON := flags.Bool("json", false, "print a JSON array (every status key of each channel) instead of the table")
	if err := flags.Parse(args); err != nil {
		return usageError(flags, err, "usage: ipcfs ls [--json] [MOUNTPOINT...]")
	}
	mounts := flags.Args()
	if len(mounts) == 0 {
		all, err := mountinfo.OfType("fuse.ipcfs")
		if err != nil {
			fmt.Fprintln(os.Stderr, "ipcfs ls:", err)
			return 1
		}
		for _, m := range all {
			mounts = append(mounts, m.MountPoint)
		}
	}
	code := 0
	var chans []listing.Channel
	for _, mnt := range mounts {
		if abs, err := filepath.Abs(mnt); err == nil {
			mnt = abs
		}
		if m, ok, err := mountinfo.Find(mnt); err == nil && (!ok || m.FSType != "fuse.ipcfs") {
			fmt.Fprintf(os.Stderr, "ipcfs ls: %s is not an ipcfs mount\n", mnt)
			code = 1
			continue
		}
		c, err := listing.Read(mnt)
		switch {
		case errors.Is(err, syscall.ENOTCONN):
			fmt.Fprintf(os.Stderr, "ipcfs ls: %s: its daemon is gone (transport endpoint is not connected); umount %s removes the mount\n", mnt, mnt)
			code = 1
		case err != nil:
			fmt.Fprintln(os.Stderr, "ipcfs ls:", err)
			code = 1
		}
		chans = append(chans, c...)
	}
	var err error
	if *asJSON {
		err = listing.WriteJSON(os.Stdout, chans)
	} else {
		err = listing.WriteTable(os.Stdout, chans)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipcfs ls:", err)
		return 1
	}
	return code
}
