package memory

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/regate/gateway/gateway"
)

// redactedPrefix starts every display form gateway.Redact makes.
const redactedPrefix = "sk-..."

// normKey validates k and returns a normalized deep copy.
func normKey(k *gateway.Key) (*gateway.Key, error) {
	if !isHash(k.ID) {
		return nil, errors.New("key id must be a lowercase sha-256 hex digest")
	}
	if k.Display != "" {
		rest, ok := strings.CutPrefix(k.Display, redactedPrefix)
		if !ok || !utf8.ValidString(rest) || utf8.RuneCountInString(rest) > 4 {
			return nil, errors.New("key display must be a redacted form showing at most 4 characters")
		}
	}
	md, err := normMetadata(k.Metadata)
	if err != nil {
		return nil, fmt.Errorf("key metadata: %w", err)
	}
	n := *k
	n.Models = normList(k.Models)
	n.Aliases = emptyNil(k.Aliases)
	n.Metadata = md
	n.ExpiresAt = normTime(k.ExpiresAt)
	n.CreatedAt = normTime(k.CreatedAt)
	n.Limits = copyLimits(k.Limits)
	n.ModelLimits = copyModelLimits(k.ModelLimits)
	return &n, nil
}

// normTeam validates t and returns a normalized deep copy.
func normTeam(t *gateway.Team) (*gateway.Team, error) {
	if err := checkID("team", t.ID); err != nil {
		return nil, err
	}
	md, err := normMetadata(t.Metadata)
	if err != nil {
		return nil, fmt.Errorf("team %q metadata: %w", t.ID, err)
	}
	n := *t
	n.Models = normList(t.Models)
	n.ModelAliases = emptyNil(t.ModelAliases)
	n.Metadata = md
	n.CreatedAt = normTime(t.CreatedAt)
	n.Limits = copyLimits(t.Limits)
	return &n, nil
}

// normUser validates u and returns a normalized deep copy.
func normUser(u *gateway.User) (*gateway.User, error) {
	if err := checkID("user", u.ID); err != nil {
		return nil, err
	}
	md, err := normMetadata(u.Metadata)
	if err != nil {
		return nil, fmt.Errorf("user %q metadata: %w", u.ID, err)
	}
	n := *u
	n.Models = normList(u.Models)
	n.Metadata = md
	n.CreatedAt = normTime(u.CreatedAt)
	n.Limits = copyLimits(u.Limits)
	return &n, nil
}

func copyKey(k *gateway.Key) *gateway.Key {
	c := *k
	c.Models = slices.Clone(k.Models)
	c.Aliases = maps.Clone(k.Aliases)
	c.Metadata = copyObject(k.Metadata)
	c.Limits = copyLimits(k.Limits)
	c.ModelLimits = copyModelLimits(k.ModelLimits)
	return &c
}

func copyTeam(t *gateway.Team) *gateway.Team {
	c := *t
	c.Models = slices.Clone(t.Models)
	c.ModelAliases = maps.Clone(t.ModelAliases)
	c.Metadata = copyObject(t.Metadata)
	c.Limits = copyLimits(t.Limits)
	return &c
}

func copyUser(u *gateway.User) *gateway.User {
	c := *u
	c.Models = slices.Clone(u.Models)
	c.Metadata = copyObject(u.Metadata)
	c.Limits = copyLimits(u.Limits)
	return &c
}

// copyLimits copies l, so that no caller shares its numbers with the
// store.
func copyLimits(l gateway.Limits) gateway.Limits {
	l.MaxBudget = copyPtr(l.MaxBudget)
	l.SoftBudget = copyPtr(l.SoftBudget)
	l.RPMLimit = copyPtr(l.RPMLimit)
	l.TPMLimit = copyPtr(l.TPMLimit)
	l.MaxParallelRequests = copyPtr(l.MaxParallelRequests)
	return l
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// copyModelLimits copies m; empty maps are nil, as PostgreSQL gives them
// back.
func copyModelLimits(m gateway.ModelLimits) gateway.ModelLimits {
	return gateway.ModelLimits{
		RPM:    emptyNil(m.RPM),
		TPM:    emptyNil(m.TPM),
		Budget: emptyNil(m.Budget),
	}
}

// emptyNil copies m; empty is nil.
func emptyNil[V any](m map[string]V) map[string]V {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// checkID refuses ids PostgreSQL could not store as text.
func checkID(kind, id string) error {
	if id == "" {
		return fmt.Errorf("empty %s id", kind)
	}
	if !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
		return fmt.Errorf("%s id %q is not valid text", kind, id)
	}
	return nil
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// normTime is t as a timestamptz round trip gives it back: UTC, whole
// microseconds, no monotonic reading. The zero time stays zero.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// normList copies l; empty is nil.
func normList(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return slices.Clone(l)
}

// normMetadata returns md as a JSON round trip gives it back (numbers as
// float64, nested objects as map[string]any, arrays as []any), which is
// also a deep copy; empty is nil.
func normMetadata(md map[string]any) (map[string]any, error) {
	if len(md) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// copyObject deep-copies a normalized JSON object.
func copyObject(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = copyValue(v)
	}
	return c
}

func copyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return copyObject(v)
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = copyValue(e)
		}
		return c
	default: // string, float64, bool, nil: immutable
		return v
	}
}
