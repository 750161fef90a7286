package mountopts

import (
	"flag"
	"slices"
	"strings"
	"testing"
)

func testFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Bool("allow-other", false, "")
	fs.String("queue-bytes", "16M", "")
	fs.Int("queue-msgs", 4096, "")
	fs.String("log-file", "", "")
	return fs
}

func TestToArgs(t *testing.T) {
	for _, tc := range []struct {
		opts string
		want []string
	}{
		{"", nil},
		{"allow_other", []string{"--allow-other"}},
		{"allow_other=false", []string{"--allow-other=false"}},
		{"rw,allow_other,queue_bytes=32M,dev,suid", []string{"--allow-other", "--queue-bytes=32M"}},
		{"queue_msgs=7,log_file=/var/log/a=b", []string{"--queue-msgs=7", "--log-file=/var/log/a=b"}},
		{"defaults,nofail,_netdev,x-systemd.automount,noauto,nodev,nosuid,noexec,noatime,comment=x", nil},
		{"queue_bytes=", []string{"--queue-bytes="}},
	} {
		got, err := ToArgs(testFlags(), tc.opts)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ToArgs(%q) = %q, %v; want %q", tc.opts, got, err, tc.want)
		}
	}
}

func TestToArgsErrors(t *testing.T) {
	for opts, says := range map[string]string{
		"bogus":           `unknown option "bogus"`,
		"queue-bytes=1":   `unknown option "queue-bytes"`,
		"queue_bytes":     "needs a value",
		"ro":              `unknown option "ro"`,
		"allow_other,xyz": "allow_other, log_file, queue_bytes, queue_msgs",
	} {
		_, err := ToArgs(testFlags(), opts)
		if err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("ToArgs(%q) error %v; want it to say %q", opts, err, says)
		}
	}
}

// A flag added to the set is an option with no other change.
func TestNewFlagIsAnOption(t *testing.T) {
	fs := testFlags()
	fs.Int("max-channels", 0, "")
	got, err := ToArgs(fs, "max_channels=9")
	if err != nil || !slices.Equal(got, []string{"--max-channels=9"}) {
		t.Errorf("ToArgs(max_channels=9) = %q, %v", got, err)
	}
	// The arguments parse back into the set.
	if err := fs.Parse(got); err != nil || fs.Lookup("max-channels").Value.String() != "9" {
		t.Errorf("parsing %q: %v", got, err)
	}
}
