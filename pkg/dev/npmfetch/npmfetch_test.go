package npmfetch

import (
	"crypto/sha512"
	"strings"
	"testing"
)

func FuzzContentRangeStart(f *testing.F) {
	for _, s := range []string{"bytes 0-1/2", "bytes 100-199/200", "bytes */200", "", "bytes -1-2/3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := contentRangeStart(s)
		if n >= 0 && !strings.HasPrefix(s, "bytes ") {
			t.Fatalf("accepted %q", s)
		}
	})
}

func FuzzParseIntegrity(f *testing.F) {
	f.Add("sha512-XP97mMqnc5tZpKQywR8N7cLTsHNiTmHr30pC5mzo3jWmukjKn2IBa60c2B/gWUNcuFjOMjWoorQICCqBVj5wpw==")
	f.Add("sha1-abc")
	f.Fuzz(func(t *testing.T, s string) {
		sum, err := parseIntegrity(s)
		if err == nil && len(sum) != sha512.Size {
			t.Fatalf("bad digest length %d", len(sum))
		}
	})
}
