package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/regate/gateway/gateway"
)

func TestTranslate(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	pg := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code}) }
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want error // nil: none of the sentinels
	}{
		{"no rows", live, pgx.ErrNoRows, gateway.ErrNotFound},
		{"unique violation", live, pg("23505"), gateway.ErrConflict},
		{"foreign key violation", live, pg("23503"), gateway.ErrNotFound},
		{"admin shutdown", live, pg("57P01"), gateway.ErrUnavailable},
		{"cannot connect now", live, pg("57P03"), gateway.ErrUnavailable},
		{"connection failure", live, pg("08006"), gateway.ErrUnavailable},
		{"too many connections", live, pg("53300"), gateway.ErrUnavailable},
		{"check violation", live, pg("23514"), nil},
		{"syntax error", live, pg("42601"), nil},
		{"connection reset", live, fmt.Errorf("read: %w", syscall.ECONNRESET), gateway.ErrUnavailable},
		{"unexpected EOF", live, fmt.Errorf("read: %w", io.ErrUnexpectedEOF), gateway.ErrUnavailable},
		{"refused", live, &pgconn.ConnectError{}, gateway.ErrUnavailable},
		{"caller gave up", done, fmt.Errorf("read: %w", io.ErrUnexpectedEOF), nil},
		{"not a driver error", live, errors.New("bad input"), nil},
	}
	sentinels := []error{gateway.ErrNotFound, gateway.ErrConflict, gateway.ErrUnavailable}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := translate(tc.ctx, tc.err)
			for _, s := range sentinels {
				if want := s == tc.want; errors.Is(got, s) != want {
					t.Errorf("translate(%v) = %v; errors.Is(%v) = %v, want %v", tc.err, got, s, !want, want)
				}
			}
			if !errors.Is(got, tc.err) && tc.err != pgx.ErrNoRows {
				t.Errorf("translate(%v) = %v, want the driver error kept in the chain", tc.err, got)
			}
		})
	}
	if translate(live, nil) != nil {
		t.Error("translate(nil) != nil")
	}
}

func TestNotice(t *testing.T) {
	const self, other = "self", "other"
	many := make([]gateway.Change, 200)
	for i := range many {
		many[i] = gateway.Change{Kind: "key", ID: gateway.HashKey(fmt.Sprint(i))}
	}
	odd := []gateway.Change{{Kind: "team", ID: "a \"quoted\"\nteam, with: punctuation"}, {Kind: "user", ID: "ü"}}
	tests := []struct {
		name     string
		payload  string
		want     []gateway.Change
		wantOwn  bool
		wantFail bool
	}{
		{"changes", encodeNotice(other, odd), odd, false, false},
		{"own", encodeNotice(self, odd), nil, true, false},
		{"too large for NOTIFY becomes flush", encodeNotice(other, many), nil, false, false},
		{"flush", `{"src":"other","all":true}`, nil, false, false},
		{"garbage", `not json`, nil, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.payload) >= 8000 {
				t.Fatalf("payload is %d bytes, over NOTIFY's limit", len(tc.payload))
			}
			got, own, err := decodeNotice(tc.payload, self)
			if (err != nil) != tc.wantFail || own != tc.wantOwn || !slices.Equal(got, tc.want) {
				t.Errorf("decodeNotice(%.60s) = %v, %v, %v; want %v, %v, error %v", tc.payload, got, own, err, tc.want, tc.wantOwn, tc.wantFail)
			}
			if tc.want == nil && got != nil {
				t.Errorf("decodeNotice(%.60s) = %v, want nil (flush everything)", tc.payload, got)
			}
		})
	}
	if strings.Contains(encodeNotice(other, many), many[0].ID) {
		t.Error("an oversized notice still lists changes")
	}
}
