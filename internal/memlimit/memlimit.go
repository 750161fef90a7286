// Package memlimit finds how much memory this process may use: the memory
// limit of its cgroup (the smallest of the cgroup's and its ancestors',
// cgroup v2 memory.max or v1 memory.limit_in_bytes), or else the
// machine's physical memory (MemTotal in /proc/meminfo).
package memlimit

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ipcfs/ipcfs/internal/mountinfo"
)

// Limit is an amount of memory and where it was read.
type Limit struct {
	Bytes  int64
	Source string // e.g. "cgroup v2 /sys/fs/cgroup/app/memory.max", "MemTotal"
}

// Detect returns the smaller of the process's cgroup memory limit (if
// any) and physical memory.
func Detect() (Limit, error) {
	return detect(system{})
}

// files is what detect reads, so tests can give it other contents.
type files interface {
	ReadFile(path string) ([]byte, error)
}

type system struct{}

func (system) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

func detect(fs files) (Limit, error) {
	total, err := memTotal(fs)
	if err != nil {
		return Limit{}, err
	}
	best := Limit{Bytes: total, Source: "MemTotal"}
	for _, l := range cgroupLimits(fs) {
		if l.Bytes > 0 && l.Bytes < best.Bytes {
			best = l
		}
	}
	return best, nil
}

func memTotal(fs files) (int64, error) {
	b, err := fs.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("memlimit: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil && kb > 0 {
					return kb * 1024, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("memlimit: no MemTotal in /proc/meminfo")
}

// hierarchy is a mounted cgroup hierarchy.
type hierarchy struct {
	v2         bool
	root       string // the cgroup path mounted (the mountinfo root field)
	mountPoint string
}

// cgroupLimits returns the limits of the process's cgroup and of each
// ancestor, in every hierarchy that has the memory controller.
func cgroupLimits(fs files) []Limit {
	cg, err := fs.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	mi, err := fs.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var v2 []hierarchy
	var v1 []hierarchy
	for _, line := range strings.Split(string(mi), "\n") {
		fields := strings.Fields(line)
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+3 {
			continue
		}
		h := hierarchy{root: mountinfo.Unescape(fields[3]), mountPoint: mountinfo.Unescape(fields[4])}
		switch fields[sep+1] {
		case "cgroup2":
			h.v2 = true
			v2 = append(v2, h)
		case "cgroup":
			for _, o := range strings.Split(fields[sep+3], ",") {
				if o == "memory" {
					v1 = append(v1, h)
				}
			}
		}
	}
	var out []Limit
	for _, line := range strings.Split(string(cg), "\n") {
		// "ID:CONTROLLERS:PATH"; v2 is "0::PATH".
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var hs []hierarchy
		file := ""
		switch {
		case parts[0] == "0" && parts[1] == "":
			hs, file = v2, "memory.max"
		case hasController(parts[1], "memory"):
			hs, file = v1, "memory.limit_in_bytes"
		default:
			continue
		}
		for _, h := range hs {
			rel, ok := relative(h.root, parts[2])
			if !ok {
				continue
			}
			for dir := filepath.Join(h.mountPoint, rel); ; dir = filepath.Dir(dir) {
				path := filepath.Join(dir, file)
				if n, ok := readLimit(fs, path); ok {
					v := "v1"
					if h.v2 {
						v = "v2"
					}
					out = append(out, Limit{Bytes: n, Source: "cgroup " + v + " " + path})
				}
				if dir == h.mountPoint || len(dir) <= len(h.mountPoint) {
					break
				}
			}
		}
	}
	return out
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// relative returns path inside a hierarchy mounted with root.
func relative(root, path string) (string, bool) {
	if root == "/" {
		return path, true
	}
	if path == root {
		return "/", true
	}
	if rest, ok := strings.CutPrefix(path, root+"/"); ok {
		return "/" + rest, true
	}
	return "", false
}

// readLimit reads a limit file: a number of bytes, or "max" (none). v1
// writes "no limit" as a huge number (PAGE_COUNTER_MAX pages).
func readLimit(fs files, path string) (int64, bool) {
	b, err := fs.ReadFile(path)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0, false
	}
	return n, true
}
