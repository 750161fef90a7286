package mountopts

import (
	"fmt"
	"path/filepath"
	"strings"
)

// HelperArgs are the arguments of the form mount(8) helpers are run with:
// "SOURCE MOUNTPOINT [-o OPTIONS]..." (mount.fuse3 runs "TYPE SOURCE
// MOUNTPOINT -o OPTIONS"; TYPE is the program).
type HelperArgs struct {
	Source     string
	Mountpoint string // absolute, as mount(8) passes it
	Options    string // comma-separated; several -o are joined
}

// ParseHelper parses args (after the program name). The mount point must
// be absolute, so that a mistyped command ("ipcfs frob x") is not taken
// for a mount.
func ParseHelper(args []string) (HelperArgs, error) {
	var h HelperArgs
	var operands, opts []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o":
			if i+1 == len(args) {
				return h, fmt.Errorf("-o needs options")
			}
			i++
			opts = append(opts, args[i])
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, a[2:])
		case strings.HasPrefix(a, "-") && a != "-":
			return h, fmt.Errorf("unknown flag %q (the mount form takes only -o OPTIONS)", a)
		default:
			operands = append(operands, a)
		}
	}
	if len(operands) != 2 {
		return h, fmt.Errorf("want SOURCE MOUNTPOINT, got %q", operands)
	}
	if !filepath.IsAbs(operands[1]) {
		return h, fmt.Errorf("MOUNTPOINT %q is not an absolute path", operands[1])
	}
	h.Source, h.Mountpoint, h.Options = operands[0], operands[1], strings.Join(opts, ",")
	return h, nil
}

// LooksLikeHelper reports whether args (after the program name) are in the
// helper form rather than a subcommand: two operands or more, the second
// an absolute path.
func LooksLikeHelper(args []string) bool {
	return len(args) >= 2 && !strings.HasPrefix(args[0], "-") && filepath.IsAbs(args[1])
}

// DefaultPath is the PATH a daemon started by mount(8) gets when mount(8)
// has cleared it (it runs helpers with a sanitized environment): systemd's
// default, where fusermount3 is found.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DaemonEnv returns the environment for the daemon a helper starts:
// environ with PATH set to DefaultPath if it is unset or empty, and
// without NOTIFY_SOCKET (the service manager of whoever ran mount(8) is
// not the daemon's).
func DaemonEnv(environ []string) []string {
	var env []string
	hasPath := false
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "NOTIFY_SOCKET":
			continue
		case k == "PATH":
			if v == "" {
				continue
			}
			hasPath = true
		}
		env = append(env, kv)
	}
	if !hasPath {
		env = append(env, "PATH="+DefaultPath)
	}
	return env
}
