package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/regate/gateway/gateway"
)

// credential returns the presented key from Authorization: Bearer, api-key
// or x-api-key, in that order.
func credential(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:])
		}
		return strings.TrimSpace(h)
	}
	if h := r.Header.Get("Api-Key"); h != "" {
		return strings.TrimSpace(h)
	}
	return strings.TrimSpace(r.Header.Get("X-Api-Key"))
}

// authenticate resolves the request's credential to a principal, in the
// authentication span. Unknown, blocked and expired keys are one error to
// the client.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (*gateway.Principal, error) {
	ctx, span := s.startAuthSpan(ctx)
	p, err := s.lookupPrincipal(ctx, r)
	endAuthSpan(span, p, err)
	return p, err
}

// lookupPrincipal is authenticate without the span.
func (s *Server) lookupPrincipal(ctx context.Context, r *http.Request) (*gateway.Principal, error) {
	key := credential(r)
	if key == "" {
		return nil, gateway.ErrMissingKey
	}
	hash := gateway.HashKey(key)
	if subtle.ConstantTimeCompare([]byte(hash), []byte(s.masterHash)) == 1 {
		return &gateway.Principal{Key: &gateway.Key{
			ID: hash, Display: gateway.Redact(key), Alias: "master_key", Role: gateway.RoleAdmin,
		}}, nil
	}
	p, err := s.cfg.Store.PrincipalByKeyHash(ctx, hash)
	switch {
	case errors.Is(err, gateway.ErrNotFound):
		return nil, &gateway.InvalidKeyError{Display: gateway.Redact(key), Reason: "unknown"}
	case err != nil:
		return nil, fmt.Errorf("authenticate: %w", err)
	case p == nil || p.Key == nil:
		return nil, &gateway.InvalidKeyError{Display: gateway.Redact(key), Reason: "unknown"}
	case p.Key.Blocked:
		return nil, &gateway.InvalidKeyError{Display: gateway.Redact(key), Reason: "blocked"}
	case p.Key.Expired(s.cfg.Now()):
		return nil, &gateway.InvalidKeyError{Display: gateway.Redact(key), Reason: "expired"}
	}
	return p, nil
}
