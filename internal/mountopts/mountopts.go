// Package mountopts turns the options of mount(8) and /etc/fstab
// ("-o allow_other,queue_bytes=32M") into the command-line flags of a
// flag.FlagSet ("--allow-other --queue-bytes=32M").
//
// Every flag of the set is an option: its name with "_" for "-". A bool
// flag may stand alone (allow_other) or take a value (allow_other=false);
// any other flag needs one. The options mount(8), mount.fuse3 and fstab
// add or use themselves (rw, dev, suid, nofail, _netdev, x-*, …) are
// dropped; anything else is an error.
package mountopts

import (
	"flag"
	"fmt"
	"strings"
)

// generic are the options of mount(8) and fstab that are not the
// filesystem's: mount(8) and mount.fuse3 add rw, dev, suid (and exec,
// atime… when asked), fstab uses auto, nofail, _netdev.
var generic = map[string]bool{
	"defaults": true, "rw": true, "auto": true, "noauto": true,
	"user": true, "nouser": true, "users": true, "owner": true, "group": true,
	"nofail": true, "_netdev": true,
	"dev": true, "nodev": true, "suid": true, "nosuid": true,
	"exec": true, "noexec": true, "async": true,
	"atime": true, "noatime": true, "relatime": true, "norelatime": true,
	"strictatime": true, "nostrictatime": true, "diratime": true, "nodiratime": true,
	"lazytime": true, "nolazytime": true, "silent": true, "loud": true,
}

// Generic reports whether opt (NAME or NAME=VALUE) is an option of
// mount(8) or fstab rather than of the filesystem; ToArgs drops these.
func Generic(opt string) bool {
	name, _, _ := strings.Cut(opt, "=")
	return generic[name] || strings.HasPrefix(name, "x-") || name == "comment"
}

// ToArgs returns the flags that the comma-separated options opts stand
// for, in their order, as "--name" or "--name=value" arguments.
func ToArgs(flags *flag.FlagSet, opts string) ([]string, error) {
	var args []string
	for _, opt := range strings.Split(opts, ",") {
		if opt == "" || Generic(opt) {
			continue
		}
		name, value, hasValue := strings.Cut(opt, "=")
		f := flags.Lookup(strings.ReplaceAll(name, "_", "-"))
		if f == nil || strings.Contains(name, "-") {
			return nil, fmt.Errorf("unknown option %q (the options are: %s)", name, strings.Join(Names(flags), ", "))
		}
		switch {
		case hasValue:
			args = append(args, "--"+f.Name+"="+value)
		case isBool(f):
			args = append(args, "--"+f.Name)
		default:
			return nil, fmt.Errorf("option %s needs a value (%s=…)", name, name)
		}
	}
	return args, nil
}

// Names returns the option names of the flags, in the set's (sorted) order.
func Names(flags *flag.FlagSet) []string {
	var names []string
	flags.VisitAll(func(f *flag.Flag) {
		names = append(names, OptionName(f.Name))
	})
	return names
}

// OptionName is the option that stands for the flag called name.
func OptionName(name string) string { return strings.ReplaceAll(name, "-", "_") }

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
