package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"time"
)

// Special allow-list values (DESIGN §5, §10.6).
const (
	// AllModels permits every model.
	AllModels = "*"
	// AllProxyModels is LiteLLM's spelling of AllModels.
	AllProxyModels = "all-proxy-models"
	// AllTeamModels on a key permits whatever the key's team permits; on a key
	// without a team it permits nothing.
	AllTeamModels = "all-team-models"
	// NoDefaultModels on a user permits nothing through the user's personal keys.
	NoDefaultModels = "no-default-models"
)

// Roles a principal can carry.
const (
	// RoleAdmin is the key role of the master key.
	RoleAdmin = "admin"
	// RoleProxyAdmin is the LiteLLM user role that grants admin routes.
	RoleProxyAdmin = "proxy_admin"
	// RoleInternalUser is the default user role.
	RoleInternalUser = "internal_user"
)

// Secret is a credential that never prints: logging or formatting it shows a
// redacted form. Use Reveal where the plaintext is really needed.
type Secret string

// Reveal returns the plaintext.
func (s Secret) Reveal() string { return string(s) }

// String returns the redacted form.
func (s Secret) String() string { return Redact(string(s)) }

// LogValue implements slog.LogValuer with the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Redact shows at most the last 4 characters of a credential: "sk-...abcd".
func Redact(s string) string {
	if s == "" {
		return ""
	}
	if len(s) <= 8 {
		return "sk-..."
	}
	return "sk-..." + s[len(s)-4:]
}

// KeyChars reports whether s holds only characters a key keeps on its way
// through an HTTP header: printable ASCII, no spaces (the gateway trims
// spaces around a presented key, and Redact cuts bytes, not characters).
func KeyChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// HashKey returns the SHA-256 hex digest under which a virtual key is stored.
func HashKey(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

// Key is a virtual key. Only its hash is ever stored.
type Key struct {
	// ID is the SHA-256 hex digest of the plaintext key.
	ID string
	// Display is the redacted form of the plaintext ("sk-...abcd").
	Display string
	Alias   string
	// Role is RoleAdmin for the master key and empty otherwise.
	Role   string
	Models []string
	// Aliases maps a requested name to a target name for this key only.
	Aliases  map[string]string
	TeamID   string
	UserID   string
	Metadata map[string]any
	Blocked  bool
	// ExpiresAt is the zero time for keys that never expire.
	ExpiresAt time.Time
	CreatedAt time.Time
	// Limits are the key's budget and rate limits; ModelLimits its limits
	// per model group (DESIGN §11).
	Limits      Limits
	ModelLimits ModelLimits
}

// Expired reports whether the key has expired at now.
func (k *Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// Team groups keys under one allow-list and alias table.
type Team struct {
	ID           string
	Alias        string
	Models       []string
	ModelAliases map[string]string
	Blocked      bool
	Metadata     map[string]any
	CreatedAt    time.Time
	// Limits are the team's budget and rate limits (DESIGN §11).
	Limits Limits
}

// User owns keys; its allow-list applies to all of them (DESIGN §5).
type User struct {
	ID        string
	Email     string
	Role      string
	Models    []string
	Metadata  map[string]any
	CreatedAt time.Time
	// Limits are the user's budget and rate limits (DESIGN §11).
	Limits Limits
}

// Principal is an authenticated caller: a key with its team and user, each of
// which may be nil.
type Principal struct {
	Key  *Key
	Team *Team
	User *User
}

// IsAdmin reports whether the principal may use admin routes by role. The
// policy makes the actual decision; this is for wiring decisions such as
// logging.
func (p *Principal) IsAdmin() bool {
	if p == nil || p.Key == nil {
		return false
	}
	return p.Key.Role == RoleAdmin || (p.User != nil && p.User.Role == RoleProxyAdmin)
}

// KeyAliases returns the key's alias table or nil.
func (p *Principal) KeyAliases() map[string]string {
	if p == nil || p.Key == nil {
		return nil
	}
	return p.Key.Aliases
}

// TeamAliases returns the team's alias table or nil.
func (p *Principal) TeamAliases() map[string]string {
	if p == nil || p.Team == nil {
		return nil
	}
	return p.Team.ModelAliases
}
