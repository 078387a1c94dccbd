package gateway

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30s", 30 * time.Second, false},
		{"10m", 10 * time.Minute, false},
		{"1h", time.Hour, false},
		{"30d", 30 * 24 * time.Hour, false},
		{"1.5d", 36 * time.Hour, false},
		{"50ms", 50 * time.Millisecond, false},
		{"1h30m", 90 * time.Minute, false},
		{"0s", 0, false},
		{"30", 0, true},
		{"d", 0, true},
		{"-1d", 0, true},
		{"-5s", 0, true},
		{"ten days", 0, true},
		{"", 0, true},
		{"3w", 0, true},
		{"NaNd", 0, true},
		{"106751d", 106751 * 24 * time.Hour, false},
		{"106752d", 0, true}, // more than a time.Duration holds
		{"365000d", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
