// Package mountinfo finds mounts in /proc/self/mountinfo.
package mountinfo

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Device     string // "major:minor" of the mounted filesystem
	MountPoint string // unescaped
	FSType     string // e.g. "fuse.ipcfs"
}

// All returns every mount of this process's namespace, in the order of
// /proc/self/mountinfo (a mount stacked on another comes after it).
func All() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	defer f.Close()
	var all []Mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m, valid := parse(sc.Text()); valid {
			all = append(all, m)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	return all, nil
}

// Find returns the mount whose mount point is path (absolute, clean), and
// whether there is one. With several stacked on path, it returns the last
// (the one on top).
func Find(path string) (Mount, bool, error) {
	all, err := All()
	if err != nil {
		return Mount{}, false, err
	}
	var found Mount
	ok := false
	for _, m := range all {
		if m.MountPoint == path {
			found, ok = m, true
		}
	}
	return found, ok, nil
}

// OfType returns every mount of /proc/self/mountinfo whose filesystem type
// is fstype, in mount order.
func OfType(fstype string) ([]Mount, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	var of []Mount
	for _, m := range all {
		if m.FSType == fstype {
			of = append(of, m)
		}
	}
	return of, nil
}

// parse reads one line: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE SOURCE SUPEROPTS".
func parse(line string) (Mount, bool) {
	fields := strings.Fields(line)
	if len(fields) < 5 {
		return Mount{}, false
	}
	m := Mount{Device: fields[2], MountPoint: Unescape(fields[4])}
	for i, f := range fields {
		if f == "-" && i+1 < len(fields) {
			m.FSType = fields[i+1]
			break
		}
	}
	return m, true
}

// Unescape undoes the octal escapes of mountinfo (\040 for a space, \011
// tab, \012 newline, \134 backslash).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
