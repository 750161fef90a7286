package memlimit

import (
	"os"
	"testing"
)

type fakeFiles map[string]string

func (f fakeFiles) ReadFile(path string) ([]byte, error) {
	if s, ok := f[path]; ok {
		return []byte(s), nil
	}
	return nil, os.ErrNotExist
}

const meminfo = "MemTotal:       24683392 kB\nMemFree:        1 kB\n"

func TestDetect(t *testing.T) {
	tests := []struct {
		name  string
		files fakeFiles
		want  Limit
	}{
		{"no cgroup files", fakeFiles{"/proc/meminfo": meminfo}, Limit{24683392 * 1024, "MemTotal"}},
		{"v2 with a limit on an ancestor", fakeFiles{
			"/proc/meminfo":                 meminfo,
			"/proc/self/cgroup":             "0::/a/b\n",
			"/proc/self/mountinfo":          "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n",
			"/sys/fs/cgroup/a/b/memory.max": "max\n",
			"/sys/fs/cgroup/a/memory.max":   "314572800\n",
			"/sys/fs/cgroup/memory.max":     "max\n",
		}, Limit{314572800, "cgroup v2 /sys/fs/cgroup/a/memory.max"}},
		{"v1 memory hierarchy, unlimited is a huge number", fakeFiles{
			"/proc/meminfo":        meminfo,
			"/proc/self/cgroup":    "4:memory:/x/y\n0::/\n",
			"/proc/self/mountinfo": "40 1 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n41 1 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
			"/sys/fs/cgroup/memory/x/y/memory.limit_in_bytes": "9223372036854771712\n",
			"/sys/fs/cgroup/memory/x/memory.limit_in_bytes":   "1073741824\n",
			"/sys/fs/cgroup/unified/memory.max":               "2147483648\n",
		}, Limit{1 << 30, "cgroup v1 /sys/fs/cgroup/memory/x/memory.limit_in_bytes"}},
		{"a limit above physical memory does not count", fakeFiles{
			"/proc/meminfo":                 meminfo,
			"/proc/self/cgroup":             "0::/big\n",
			"/proc/self/mountinfo":          "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"/sys/fs/cgroup/big/memory.max": "1099511627776\n",
		}, Limit{24683392 * 1024, "MemTotal"}},
		{"a namespaced mount root", fakeFiles{
			"/proc/meminfo":                 meminfo,
			"/proc/self/cgroup":             "0::/ns/app\n",
			"/proc/self/mountinfo":          "30 1 0:26 /ns /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"/sys/fs/cgroup/app/memory.max": "104857600\n",
		}, Limit{100 << 20, "cgroup v2 /sys/fs/cgroup/app/memory.max"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := detect(tc.files)
			if err != nil || got != tc.want {
				t.Fatalf("detect = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestDetectHere(t *testing.T) {
	l, err := Detect()
	if err != nil || l.Bytes <= 0 {
		t.Fatalf("Detect() = %+v, %v", l, err)
	}
	t.Logf("%d bytes from %s", l.Bytes, l.Source)
}
