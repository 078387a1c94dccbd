package memory

import (
	"errors"
	"testing"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) gateway.Store { return New() })
}

func BenchmarkPrincipalByKeyHash(b *testing.B) {
	storetest.BenchmarkPrincipalByKeyHash(b, New())
}

// The Put methods seed the store from configuration (cmd/gateway/app).
func TestPut(t *testing.T) {
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
	// Put replaces.
	if err := s.PutTeam(ctx, gateway.Team{ID: "research", Models: []string{"gpt-4o-mini"}}); err != nil {
		t.Fatal(err)
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
				if len(p.Team.Models) != 1 || p.Team.Models[0] != "gpt-4o-mini" {
					t.Errorf("PrincipalByKeyHash(%s) team models = %q, want the replaced [gpt-4o-mini]", tc.plaintext, p.Team.Models)
				}
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
		name    string
		key     gateway.Key
		wantErr error // nil: any error
	}{
		{"missing team", gateway.Key{ID: gateway.HashKey("sk-a"), TeamID: "ghost"}, gateway.ErrNotFound},
		{"missing user", gateway.Key{ID: gateway.HashKey("sk-b"), UserID: "ghost"}, gateway.ErrNotFound},
		{"not a hash", gateway.Key{ID: "sk-plaintext"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.PutKey(ctx, tc.key)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("PutKey(%+v) = %v, want an error (%v)", tc.key, err, tc.wantErr)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	storetest.RunUsage(t, func(*testing.T) gateway.UsageStore { return NewUsage() })
}
