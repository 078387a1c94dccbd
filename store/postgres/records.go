package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/regate/gateway/gateway"
)

// Column lists, in the order the scan functions read them.
const (
	keyCols = `key_hash, display, alias, role, models, aliases, coalesce(team_id, ''),
		coalesce(user_id, ''), metadata, blocked, expires_at, created_at, limits`
	teamCols = `team_id, alias, models, model_aliases, blocked, metadata, created_at, limits`
	userCols = `user_id, email, role, models, metadata, created_at, limits`
)

// scanner is pgx.Row and pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanKey(row scanner) (*gateway.Key, error) {
	var (
		k   gateway.Key
		exp *time.Time
		lim limitsDoc
	)
	err := row.Scan(&k.ID, &k.Display, &k.Alias, &k.Role, &k.Models, &k.Aliases, &k.TeamID,
		&k.UserID, &k.Metadata, &k.Blocked, &exp, &k.CreatedAt, &lim)
	if err != nil {
		return nil, err
	}
	if exp != nil {
		k.ExpiresAt = *exp
	}
	k.Limits, k.ModelLimits = lim.limits(), lim.modelLimits()
	normKey(&k)
	return &k, nil
}

func scanTeam(row scanner) (*gateway.Team, error) {
	var (
		t   gateway.Team
		lim limitsDoc
	)
	err := row.Scan(&t.ID, &t.Alias, &t.Models, &t.ModelAliases, &t.Blocked, &t.Metadata, &t.CreatedAt, &lim)
	if err != nil {
		return nil, err
	}
	t.Limits = lim.limits()
	normTeam(&t)
	return &t, nil
}

func scanUser(row scanner) (*gateway.User, error) {
	var (
		u   gateway.User
		lim limitsDoc
	)
	err := row.Scan(&u.ID, &u.Email, &u.Role, &u.Models, &u.Metadata, &u.CreatedAt, &lim)
	if err != nil {
		return nil, err
	}
	u.Limits = lim.limits()
	normUser(&u)
	return &u, nil
}

// normKey, normTeam and normUser give records read back the shape
// store/memory gives them: empty lists and maps nil, times in UTC.
func normKey(k *gateway.Key) {
	k.Models = emptyNil(k.Models)
	k.Aliases = emptyNilMap(k.Aliases)
	k.Metadata = emptyNilMap(k.Metadata)
	k.ExpiresAt = utc(k.ExpiresAt)
	k.CreatedAt = utc(k.CreatedAt)
}

func normTeam(t *gateway.Team) {
	t.Models = emptyNil(t.Models)
	t.ModelAliases = emptyNilMap(t.ModelAliases)
	t.Metadata = emptyNilMap(t.Metadata)
	t.CreatedAt = utc(t.CreatedAt)
}

func normUser(u *gateway.User) {
	u.Models = emptyNil(u.Models)
	u.Metadata = emptyNilMap(u.Metadata)
	u.CreatedAt = utc(u.CreatedAt)
}

func emptyNil(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

func emptyNilMap[V any](m map[string]V) map[string]V {
	if len(m) == 0 {
		return nil
	}
	return m
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// keyArgs are the values of a key's columns in keyCols order, minus
// created_at: $1 key_hash … $11 expires_at, $12 limits.
func keyArgs(k *gateway.Key) ([]any, error) {
	if err := checkKey(k); err != nil {
		return nil, err
	}
	aliases, err := jsonObject(k.Aliases)
	if err != nil {
		return nil, fmt.Errorf("key aliases: %w", err)
	}
	md, err := jsonObject(k.Metadata)
	if err != nil {
		return nil, fmt.Errorf("key metadata: %w", err)
	}
	return []any{k.ID, k.Display, k.Alias, k.Role, list(k.Models), aliases, nullText(k.TeamID),
		nullText(k.UserID), md, k.Blocked, nullTime(k.ExpiresAt), newLimitsDoc(k.Limits, k.ModelLimits)}, nil
}

// teamArgs: $1 team_id … $6 metadata, $7 limits.
func teamArgs(t *gateway.Team) ([]any, error) {
	if err := checkID("team", t.ID); err != nil {
		return nil, err
	}
	aliases, err := jsonObject(t.ModelAliases)
	if err != nil {
		return nil, fmt.Errorf("team %q model aliases: %w", t.ID, err)
	}
	md, err := jsonObject(t.Metadata)
	if err != nil {
		return nil, fmt.Errorf("team %q metadata: %w", t.ID, err)
	}
	return []any{t.ID, t.Alias, list(t.Models), aliases, t.Blocked, md, newLimitsDoc(t.Limits, gateway.ModelLimits{})}, nil
}

// userArgs: $1 user_id … $5 metadata, $6 limits.
func userArgs(u *gateway.User) ([]any, error) {
	if err := checkID("user", u.ID); err != nil {
		return nil, err
	}
	md, err := jsonObject(u.Metadata)
	if err != nil {
		return nil, fmt.Errorf("user %q metadata: %w", u.ID, err)
	}
	return []any{u.ID, u.Email, u.Role, list(u.Models), md, newLimitsDoc(u.Limits, gateway.ModelLimits{})}, nil
}

// checkKey refuses anything that is not a hash as a key id and any display
// form showing more than the last 4 characters of a key (the schema's CHECK
// constraints refuse them too; this gives a clear error first).
func checkKey(k *gateway.Key) error {
	if !isHash(k.ID) {
		return errors.New("key id must be a lowercase sha-256 hex digest")
	}
	if k.Display != "" {
		rest, ok := strings.CutPrefix(k.Display, "sk-...")
		if !ok || !utf8.ValidString(rest) || utf8.RuneCountInString(rest) > 4 {
			return errors.New("key display must be a redacted form showing at most 4 characters")
		}
	}
	return nil
}

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

// jsonObject encodes m for a jsonb column; empty is {}. pgx sends a string
// to a jsonb parameter as JSON text.
func jsonObject[V any](m map[string]V) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// list is l for a NOT NULL text[] column.
func list(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// limitsDoc is the limits column: a record's limits under LiteLLM's
// names, absent when unset. pgx encodes it to jsonb and decodes it back
// with encoding/json.
type limitsDoc struct {
	MaxBudget           *float64                       `json:"max_budget,omitempty"`
	BudgetDuration      string                         `json:"budget_duration,omitempty"`
	SoftBudget          *float64                       `json:"soft_budget,omitempty"`
	RPMLimit            *int64                         `json:"rpm_limit,omitempty"`
	TPMLimit            *int64                         `json:"tpm_limit,omitempty"`
	MaxParallelRequests *int64                         `json:"max_parallel_requests,omitempty"`
	ModelRPMLimit       map[string]int64               `json:"model_rpm_limit,omitempty"`
	ModelTPMLimit       map[string]int64               `json:"model_tpm_limit,omitempty"`
	ModelMaxBudget      map[string]gateway.ModelBudget `json:"model_max_budget,omitempty"`
}

func newLimitsDoc(l gateway.Limits, m gateway.ModelLimits) limitsDoc {
	return limitsDoc{
		MaxBudget: l.MaxBudget, BudgetDuration: l.BudgetDuration, SoftBudget: l.SoftBudget,
		RPMLimit: l.RPMLimit, TPMLimit: l.TPMLimit, MaxParallelRequests: l.MaxParallelRequests,
		ModelRPMLimit: m.RPM, ModelTPMLimit: m.TPM, ModelMaxBudget: m.Budget,
	}
}

func (d *limitsDoc) limits() gateway.Limits {
	return gateway.Limits{
		MaxBudget: d.MaxBudget, BudgetDuration: d.BudgetDuration, SoftBudget: d.SoftBudget,
		RPMLimit: d.RPMLimit, TPMLimit: d.TPMLimit, MaxParallelRequests: d.MaxParallelRequests,
	}
}

// modelLimits are the key's per-model limits; empty maps are nil.
func (d *limitsDoc) modelLimits() gateway.ModelLimits {
	return gateway.ModelLimits{
		RPM:    emptyNilMap(d.ModelRPMLimit),
		TPM:    emptyNilMap(d.ModelTPMLimit),
		Budget: emptyNilMap(d.ModelMaxBudget),
	}
}
