package natschan

import (
	"regexp"
	"testing"
)

// validKey is what nats.go accepts as a key-value key.
var validKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func TestEncodeName(t *testing.T) {
	for _, tc := range []struct{ name, key string }{
		{"foo", "foo"},
		{"a.b c", "a=2Eb=20c"},
		{"*", "=2A"},
		{">", "=3E"},
		{".hidden", "=2Ehidden"},
		{"_x_y", "=5Fx_y"},
		{"ünï", "=C3=BCn=C3=AF"},
		{"a=b", "a=3Db"},
		{"tab\there", "tab=09here"},
	} {
		if got := EncodeName(tc.name); got != tc.key {
			t.Errorf("EncodeName(%q) = %q, want %q", tc.name, got, tc.key)
		}
		back, err := DecodeName(tc.key)
		if err != nil || back != tc.name {
			t.Errorf("DecodeName(%q) = %q, %v; want %q", tc.key, back, err, tc.name)
		}
	}
}

func TestDecodeNameRefuses(t *testing.T) {
	for _, key := range []string{"", "=", "=4", "=4g", "=41", "a=2e", "_x", "x.y"} {
		if name, err := DecodeName(key); err == nil {
			t.Errorf("DecodeName(%q) = %q, want an error", key, name)
		}
	}
}

func FuzzEncodeName(f *testing.F) {
	for _, s := range []string{"foo", "a.b c", "*>", "ü", "_", "=41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		key := EncodeName(name)
		if name == "" {
			return
		}
		if !validKey.MatchString(key) || key[0] == '.' || key[len(key)-1] == '.' {
			t.Fatalf("EncodeName(%q) = %q: not a valid key", name, key)
		}
		back, err := DecodeName(key)
		if err != nil || back != name {
			t.Fatalf("DecodeName(EncodeName(%q)) = %q, %v", name, back, err)
		}
	})
}

func FuzzDecodeName(f *testing.F) {
	for _, s := range []string{"foo", "a=2Eb", "=", "=ZZ", "x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		name, err := DecodeName(key)
		if err == nil && EncodeName(name) != key {
			t.Fatalf("DecodeName(%q) = %q, which encodes as %q", key, name, EncodeName(name))
		}
	})
}
