// Package sdnotify tells the service manager about the daemon's state
// through the datagram socket named by $NOTIFY_SOCKET (sd_notify(3)), as a
// systemd unit of Type=notify expects.
package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// The states ipcfs sends.
const (
	Ready    = "READY=1"    // the mount is ready
	Stopping = "STOPPING=1" // shutting down
)

// Notify sends state (newline-separated VAR=value lines) to the socket
// named by $NOTIFY_SOCKET. It reports sent=false with no error when the
// variable is unset: the process is not run by a service manager that
// listens. A name beginning with "@" is an abstract socket.
func Notify(state string) (sent bool, err error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	addr := &net.UnixAddr{Name: path, Net: "unixgram"}
	if path[0] == '@' {
		addr.Name = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	return true, nil
}
