package gateway

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseDuration checks ParseDuration: it never panics and never
// returns a negative duration; without a "d" suffix it agrees with
// time.ParseDuration (refusing negative durations); a whole number of
// days that a time.Duration holds (106751) is that many times 24h, and
// more days are refused.
// maxDays is the most whole days a time.Duration holds.
const maxDays = int(math.MaxInt64 / int64(24*time.Hour))

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "10m", "1h", "30d", "1h30m", "50ms", "-1s", "-1d", "d", "1.5d", "NaNd", "infd", "+Infd",
		"0x1p4d", "1e3d", "106751d", "106752d", "365000d", "9223372036854775807ns", "1_0d", " 1d", ".5d", "-0d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, a negative duration", s, d)
		}
		if days, ok := strings.CutSuffix(s, "d"); !ok || days == "" {
			want, werr := time.ParseDuration(s)
			if werr == nil && want < 0 {
				werr = strconv.ErrRange
			}
			if (err == nil) != (werr == nil) || (err == nil && d != want) {
				t.Fatalf("ParseDuration(%q) = %v, %v; time.ParseDuration gives %v, %v", s, d, err, want, werr)
			}
			return
		}
		days, _ := strings.CutSuffix(s, "d")
		n, aerr := strconv.Atoi(days)
		switch {
		case aerr != nil || n < 0 || days[0] == '+':
		case n <= maxDays:
			if err != nil || d != time.Duration(n)*24*time.Hour {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", s, d, err, time.Duration(n)*24*time.Hour)
			}
		case err == nil:
			t.Fatalf("ParseDuration(%q) = %v, want an error: too many days for a time.Duration", s, d)
		}
	})
}
