package proxy

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLimitBody(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		limit   int64
		wantErr error
	}{
		{"under the limit", 99, 100, nil},
		{"exactly the limit", 100, 100, nil},
		{"one byte over", 101, 100, errResponseTooLarge},
		{"far over", 10_000, 100, errResponseTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cause error
			ctx, cancel := context.WithCancelCause(context.Background())
			b := &limitBody{ReadCloser: io.NopCloser(strings.NewReader(strings.Repeat("x", tc.size))), left: tc.limit, cancel: cancel}
			got, err := io.ReadAll(b)
			if ctx.Err() != nil {
				cause = context.Cause(ctx)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("ReadAll() error = %v, want %v", err, tc.wantErr)
			}
			if int64(len(got)) > tc.limit {
				t.Errorf("ReadAll() read %d bytes, want at most %d", len(got), tc.limit)
			}
			if (tc.wantErr != nil) != errors.Is(cause, errResponseTooLarge) {
				t.Errorf("attempt cancelled with %v, want it cancelled only past the limit", cause)
			}
		})
	}
}
