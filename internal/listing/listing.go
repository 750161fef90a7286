// Package listing reads the channels of ipcfs mounts for `ipcfs ls`: each
// channel's owner and mode from its directory, its counters from its
// status file, and writes them as a table (like ipcs) or as JSON.
package listing

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
)

// A Channel is one channel of a mount.
type Channel struct {
	Mount string      // the mount point
	Name  string      // the channel's name in it
	UID   uint32      // the owner
	GID   uint32      // the group
	Mode  fs.FileMode // permission bits of the directory
	// Status is the status file: numbers as int64, true/false as bool,
	// anything else as its text; nil when the caller may not read it.
	Status map[string]any
}

// Read returns the channels of the ipcfs mounted at mnt, sorted by name.
// A channel removed while it reads is left out.
func Read(mnt string) ([]Channel, error) {
	entries, err := os.ReadDir(mnt)
	if err != nil {
		return nil, err
	}
	var chans []Channel
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := readChannel(mnt, e.Name())
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EIO) {
			continue // removed meanwhile (status of a removed channel reads EIO)
		}
		if err != nil {
			return chans, err
		}
		chans = append(chans, c)
	}
	return chans, nil
}

func readChannel(mnt, name string) (Channel, error) {
	dir := filepath.Join(mnt, name)
	fi, err := os.Stat(dir)
	if err != nil {
		return Channel{}, err
	}
	c := Channel{Mount: mnt, Name: name, Mode: fi.Mode().Perm()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		c.UID, c.GID = st.Uid, st.Gid
	}
	b, err := os.ReadFile(filepath.Join(dir, "status"))
	if errors.Is(err, fs.ErrPermission) {
		return c, nil // another user's channel: its counters are not ours to see
	}
	if err != nil {
		return Channel{}, err
	}
	c.Status = ParseStatus(string(b))
	return c, nil
}

// ParseStatus reads a status file's "key value" lines.
func ParseStatus(text string) map[string]any {
	st := map[string]any{}
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok || k == "" {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			st[k] = n
		} else if b, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
			st[k] = b
		} else {
			st[k] = v
		}
	}
	return st
}

// columns are the table's counters: heading and status key.
var columns = []struct{ head, key string }{
	{"MSGS", "messages"},
	{"BYTES", "bytes"},
	{"READERS", "readers"},
	{"WRITERS", "writers"},
	{"BLK_R", "blocked_readers"},
	{"BLK_W", "blocked_writers"},
	{"SHM", "shm_size"},
	{"HUNGUP", "hungup"},
}

// WriteTable writes one row per channel, like ipcs: its path, owner,
// permission bits in octal, then the counters.
func WriteTable(w io.Writer, chans []Channel) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	head := []string{"CHANNEL", "OWNER", "PERMS"}
	for _, c := range columns {
		head = append(head, c.head)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, c := range chans {
		row := []string{filepath.Join(c.Mount, c.Name), ownerName(c.UID), fmt.Sprintf("%o", c.Mode)}
		for _, col := range columns {
			v, ok := c.Status[col.key]
			if !ok {
				row = append(row, "-")
				continue
			}
			row = append(row, fmt.Sprint(v))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// WriteJSON writes the channels as a JSON array, one object each: mount,
// name, path, uid, gid, owner, mode (octal text), then every key of the
// status file with its value.
func WriteJSON(w io.Writer, chans []Channel) error {
	out := make([]map[string]any, 0, len(chans))
	for _, c := range chans {
		m := map[string]any{}
		for k, v := range c.Status {
			m[k] = v
		}
		m["mount"] = c.Mount
		m["name"] = c.Name
		m["path"] = filepath.Join(c.Mount, c.Name)
		m["uid"] = c.UID
		m["gid"] = c.GID
		m["owner"] = ownerName(c.UID)
		m["mode"] = fmt.Sprintf("%04o", c.Mode)
		out = append(out, m)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// ownerName is the user name of uid, or the number if it has none.
func ownerName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return id
}
