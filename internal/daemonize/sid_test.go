package daemonize

import (
	"strconv"

	"golang.org/x/sys/unix"
)

func mustSid() int {
	sid, err := unix.Getsid(0)
	if err != nil {
		panic(err)
	}
	return sid
}

func itoa(n int) string { return strconv.Itoa(n) }
