package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
)

// listen opens a datagram socket for Notify to send to and points
// $NOTIFY_SOCKET at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	addr := &net.UnixAddr{Name: name, Net: "unixgram"}
	if name[0] == '@' {
		addr.Name = "\x00" + name[1:]
	}
	conn, err := net.ListenUnixgram("unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	for name, socket := range map[string]string{
		"path":     filepath.Join(t.TempDir(), "notify"),
		"abstract": "@ipcfs-sdnotify-test-" + t.Name(),
	} {
		t.Run(name, func(t *testing.T) {
			conn := listen(t, socket)
			for _, state := range []string{Ready, Stopping, "STATUS=a\nREADY=1"} {
				sent, err := Notify(state)
				if !sent || err != nil {
					t.Fatalf("Notify(%q) = %v, %v", state, sent, err)
				}
				if got := receive(t, conn); got != state {
					t.Errorf("received %q, want %q", got, state)
				}
			}
		})
	}
}

func TestNotifyUnset(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Errorf("Notify without NOTIFY_SOCKET = %v, %v; want false, nil", sent, err)
	}
}

func TestNotifyNoListener(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	if sent, err := Notify(Ready); sent || err == nil {
		t.Errorf("Notify to a missing socket = %v, %v; want an error", sent, err)
	}
}
