package memory

import (
	"errors"
	"testing"

	"github.com/regate/gateway/gateway"
)

func TestPrincipalByKeyHash(t *testing.T) {
	ctx := t.Context()
	s := New()
	if err := s.PutTeam(ctx, gateway.Team{ID: "research", Models: []string{"gpt-4o"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutUser(ctx, gateway.User{ID: "alice"}); err != nil {
		t.Fatal(err)
	}
	teamKey := gateway.Key{ID: gateway.HashKey("sk-team"), TeamID: "research", UserID: "alice"}
	personal := gateway.Key{ID: gateway.HashKey("sk-personal"), UserID: "alice"}
	for _, k := range []gateway.Key{teamKey, personal} {
		if err := s.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name             string
		plaintext        string
		wantTeam, wantUs string
		wantErr          error
	}{
		{"team key", "sk-team", "research", "alice", nil},
		{"personal key", "sk-personal", "", "alice", nil},
		{"unknown key", "sk-nope", "", "", gateway.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.PrincipalByKeyHash(ctx, gateway.HashKey(tc.plaintext))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("PrincipalByKeyHash(%s) error = %v, want %v", tc.plaintext, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			gotTeam := ""
			if p.Team != nil {
				gotTeam = p.Team.ID
			}
			if gotTeam != tc.wantTeam || p.User == nil || p.User.ID != tc.wantUs {
				t.Errorf("PrincipalByKeyHash(%s) = team %q user %v, want team %q user %q", tc.plaintext, gotTeam, p.User, tc.wantTeam, tc.wantUs)
			}
		})
	}
}

func TestPutKeyRequiresTeamAndUser(t *testing.T) {
	ctx := t.Context()
	s := New()
	tests := []struct {
		name string
		key  gateway.Key
	}{
		{"missing team", gateway.Key{ID: gateway.HashKey("sk-a"), TeamID: "ghost"}},
		{"missing user", gateway.Key{ID: gateway.HashKey("sk-b"), UserID: "ghost"}},
		{"not a hash", gateway.Key{ID: "sk-plaintext"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.PutKey(ctx, tc.key); err == nil {
				t.Errorf("PutKey(%+v) = nil, want error", tc.key)
			}
		})
	}
}
