package mountopts

import (
	"strings"
	"testing"
)

func TestParseHelper(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want HelperArgs
	}{
		{[]string{"ipcfs", "/ipc", "-o", "rw,allow_other,dev,suid"}, HelperArgs{"ipcfs", "/ipc", "rw,allow_other,dev,suid"}},
		{[]string{"ipcfs", "/ipc"}, HelperArgs{"ipcfs", "/ipc", ""}},
		{[]string{"none", "/a b", "-oqueue_msgs=3", "-o", "allow_other"}, HelperArgs{"none", "/a b", "queue_msgs=3,allow_other"}},
		{[]string{"-o", "rw", "ipcfs", "/ipc"}, HelperArgs{"ipcfs", "/ipc", "rw"}},
	} {
		got, err := ParseHelper(tc.args)
		if err != nil || got != tc.want {
			t.Errorf("ParseHelper(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"ipcfs"}, "want SOURCE MOUNTPOINT"},
		{[]string{"ipcfs", "/a", "/b"}, "want SOURCE MOUNTPOINT"},
		{[]string{"ipcfs", "rel"}, "not an absolute path"},
		{[]string{"ipcfs", "/a", "-o"}, "-o needs options"},
		{[]string{"ipcfs", "/a", "-f"}, `unknown flag "-f"`},
	} {
		_, err := ParseHelper(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ParseHelper(%q) error %v; want %q", tc.args, err, tc.says)
		}
	}
}

func TestLooksLikeHelper(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"ipcfs", "/ipc", "-o", "rw"}, true},
		{[]string{"ipcfs", "/ipc"}, true},
		{[]string{"frob"}, false},
		{[]string{"frob", "x"}, false},
		{[]string{"-o", "/x"}, false},
	} {
		if got := LooksLikeHelper(tc.args); got != tc.want {
			t.Errorf("LooksLikeHelper(%q) = %v", tc.args, got)
		}
	}
}

func TestDaemonEnv(t *testing.T) {
	got := strings.Join(DaemonEnv([]string{"A=1", "NOTIFY_SOCKET=/run/x", "LANG=C"}), " ")
	if got != "A=1 LANG=C PATH="+DefaultPath {
		t.Errorf("without PATH: %q", got)
	}
	got = strings.Join(DaemonEnv([]string{"PATH=/bin", "B=2"}), " ")
	if got != "PATH=/bin B=2" {
		t.Errorf("with PATH: %q", got)
	}
	got = strings.Join(DaemonEnv([]string{"PATH="}), " ")
	if got != "PATH="+DefaultPath {
		t.Errorf("empty PATH: %q", got)
	}
}
