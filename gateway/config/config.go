// Package config loads the gateway's YAML configuration: the LiteLLM
// config.yaml subset (model_list, router_settings.model_group_alias,
// general_settings.master_key) and the gateway's own strict gateway_settings
// section (DESIGN §4, §10.16).
//
// LiteLLM sections are lenient: fields the gateway does not use are reported
// as warnings and ignored, so an existing LiteLLM config loads. The
// gateway_settings section is strict: an unknown field is an error, because a
// misspelt "models:" must never silently mean "unrestricted". Every problem
// and warning carries the line it was found on.
package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/catalog"
	"github.com/regate/gateway/gateway/router"
)

// DefaultMaxRequestBodyBytes is the request body limit when
// gateway_settings.max_request_body_bytes is not set (64 MiB).
const DefaultMaxRequestBodyBytes int64 = 64 << 20

// Config is a loaded, validated configuration.
type Config struct {
	// Deployments are the model_list entries the gateway serves, in config
	// order. ID is model_info.id when set and GeneratedID otherwise.
	Deployments []gateway.Deployment
	// Unserved are the model_list entries the gateway loads but cannot
	// serve (DESIGN §10.16), in config order; each also has a warning. A
	// model group with only such deployments is not in Catalog.
	Unserved []UnservedDeployment
	// Settings lists every router_settings and litellm_settings key, in
	// file order, and whether the gateway applies it.
	Settings []Setting
	// Router is what router_settings and litellm_settings say about
	// choosing deployments, retries, cooldowns, timeouts and fallbacks
	// (DESIGN §12).
	Router router.Settings
	// Aliases are router_settings.model_group_alias, in file order.
	Aliases []catalog.Alias
	// Catalog is built from Deployments and Aliases. Alias cycles, chains over
	// catalog.MaxAliasHops and aliases whose target resolves to nothing are
	// config errors, for global, team and key aliases alike.
	Catalog *catalog.Catalog
	// MasterKey is general_settings.master_key; empty when not set. The caller
	// also consults GATEWAY_MASTER_KEY and LITELLM_MASTER_KEY and refuses to
	// start without any.
	MasterKey gateway.Secret
	// Teams, Users and Keys are the principals of gateway_settings, in file
	// order, to be seeded into the store.
	Teams []gateway.Team
	Users []gateway.User
	Keys  []SeedKey
	// PolicyBundles is gateway_settings.policy.bundle: directories, bundle
	// tarballs or bundle-service URLs. Load resolves relative paths against
	// the directory of the config file. Empty means the embedded default.
	PolicyBundles []string
	// Policy is the rest of gateway_settings.policy.
	Policy PolicySettings
	// MaxRequestBodyBytes is gateway_settings.max_request_body_bytes,
	// DefaultMaxRequestBodyBytes when not set.
	MaxRequestBodyBytes int64
	// TrustedProxies is gateway_settings.trusted_proxies: the peers whose
	// X-Forwarded-For decides input.request.client_ip.
	TrustedProxies []netip.Prefix
	// Warnings lists ignored fields and other things worth a look, sorted
	// by line.
	Warnings []Warning
	// Unpriced names, in config order, the deployments whose calls have no
	// price: none in model_info or litellm_params, and none in the built-in
	// catalog. gateway check prints them and serve logs them once; their
	// calls cost 0.
	Unpriced []Warning

	// unserved is a catalog of the Unserved deployments, to recognise the
	// names only they would serve; nil when there are none.
	unserved *catalog.Catalog
	// droppedAliases are the aliases (global, team or key) dropped because
	// their target names only unserved deployments.
	droppedAliases map[string]bool
}

// UnservedDeployment is a model_list entry the gateway does not serve: a
// provider that does not speak the OpenAI wire format, an unknown prefix,
// or no api_base where one is needed.
type UnservedDeployment struct {
	// Line is the line of the entry; Index its position in model_list.
	Line, Index int
	// ID is model_info.id, or the id generated for it.
	ID        string
	ModelName string
	// Model is litellm_params.model.
	Model string
	// Reason says why it is not served.
	Reason string
}

// Setting is one key of router_settings or litellm_settings.
type Setting struct {
	Line int
	// Name is the section and key: "router_settings.num_retries".
	Name string
	// Applied is true when the gateway does what the key asks.
	Applied bool
	// Note says what the key does in the gateway, or what the gateway does
	// instead when it is not applied.
	Note string
}

// String formats the setting as "router_settings.num_retries: not applied
// (note)".
func (s Setting) String() string {
	state := "not applied"
	if s.Applied {
		state = "applied"
	}
	return fmt.Sprintf("%s: %s (%s)", s.Name, state, s.Note)
}

// UnservedName reports whether name refers only to deployments the gateway
// does not serve: a model group or wildcard-served name of theirs that no
// served deployment serves, an access group only they name, or an alias
// dropped because its target was such a name. Allow-list entries naming
// one are kept, with a warning, and permit nothing.
func (c *Config) UnservedName(name string) bool {
	return c.droppedAliases[name] || c.unservedOnly(name)
}

// unservedOnly is UnservedName without the dropped aliases.
func (c *Config) unservedOnly(name string) bool {
	if c.unserved == nil {
		return false
	}
	if c.Catalog != nil && (c.Catalog.Resolve(name, nil, nil).Found || c.Catalog.IsAccessGroup(name)) {
		return false
	}
	return c.servesNothingServed(name) || c.unserved.IsAccessGroup(name)
}

// servesNothingServed reports whether an unserved deployment would serve
// name; the caller knows that no served one does.
func (c *Config) servesNothingServed(name string) bool {
	return c.unserved != nil && c.unserved.Resolve(name, nil, nil).Found
}

// PolicySettings is gateway_settings.policy apart from its bundles.
type PolicySettings struct {
	// Verification, when set, requires every configured bundle to carry a
	// valid OPA bundle signature.
	Verification *BundleVerification
	// RunTests runs each bundle's own Rego tests before it is swapped in.
	RunTests bool
	// PollInterval is how often bundle-service URLs are polled; zero means
	// the engine's default (30s).
	PollInterval time.Duration
	// FilePollInterval is how often directory and tarball bundles are
	// checked for changes; zero means the engine's default (1s). A long
	// interval leaves reloads to SIGHUP.
	FilePollInterval time.Duration
	// DecisionLog is where decision events go: "stdout", "stderr" or a file
	// (appended to; relative paths are relative to the config file). Empty
	// means no decision log.
	DecisionLog string
}

// DefaultBundleKeyID is BundleVerification.KeyID when the config names none.
const DefaultBundleKeyID = "default"

// BundleVerification is gateway_settings.policy.verification: the key OPA
// bundle signatures are checked with (as in OPA's keys and signing config).
type BundleVerification struct {
	// KeyID names the key; a signature whose header names another key id
	// is refused. Default DefaultBundleKeyID.
	KeyID string
	// Key is a PEM public key, a file holding one (relative to the config
	// file), or for the HS* algorithms the shared secret; os.environ/NAME
	// reads it from the environment.
	Key gateway.Secret
	// Algorithm is the signature algorithm, default RS256.
	Algorithm string
	// Scope, when set, must equal the scope claim of the signature.
	Scope string
}

// SeedKey is a virtual key from gateway_settings.keys.
type SeedKey struct {
	// Plaintext is the key as configured. It is needed only to seed stores
	// that want it; Key.ID is its hash.
	Plaintext gateway.Secret
	// Key has ID = gateway.HashKey(Plaintext) and Display =
	// gateway.Redact(Plaintext). ExpiresAt comes from expires, or from
	// duration counted from the time the config was parsed.
	Key gateway.Key
}

// Warning is something in the config the gateway ignores or that is likely a
// mistake, but that does not stop it from loading.
type Warning struct {
	// Line is the 1-based line in the file, or 0 when not tied to a line.
	Line    int
	Message string
}

// String formats the warning as "line 12: message".
func (w Warning) String() string {
	if w.Line == 0 {
		return w.Message
	}
	return fmt.Sprintf("line %d: %s", w.Line, w.Message)
}

// Problem is one error in the config.
type Problem struct {
	// Line is the 1-based line in the file, or 0 when not tied to a line.
	Line    int
	Message string
}

// Error lists every problem found in a config. Parse and Load collect
// several problems rather than stopping at the first.
type Error struct {
	// File is the path given to Load, or "config.yaml" for Parse.
	File     string
	Problems []Problem
	// Warnings are the warnings found before and besides the problems.
	Warnings []Warning
}

// Error prints the problems one per line as "config.yaml:12: message".
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: %s", e.File, p.Line, p.Message)
		} else {
			fmt.Fprintf(&b, "%s: %s", e.File, p.Message)
		}
	}
	return b.String()
}

// Load reads and parses the config file at path, resolving os.environ/NAME
// references with os.LookupEnv. Relative policy bundle paths are resolved
// against the directory of path. The error, when not nil, is an *Error
// naming path, or a read error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := parse(data, os.LookupEnv, time.Now())
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.File = path
		}
		return nil, err
	}
	dir := filepath.Dir(path)
	for i, b := range cfg.PolicyBundles {
		if !strings.Contains(b, "://") && !filepath.IsAbs(b) {
			cfg.PolicyBundles[i] = filepath.Join(dir, b)
		}
	}
	if dl := cfg.Policy.DecisionLog; dl != "" && dl != "stdout" && dl != "stderr" && !filepath.IsAbs(dl) {
		cfg.Policy.DecisionLog = filepath.Join(dir, dl)
	}
	if v := cfg.Policy.Verification; v != nil && v.Algorithm[0] != 'H' {
		k := v.Key.Reveal()
		if !strings.HasPrefix(strings.TrimSpace(k), "-----BEGIN") && !filepath.IsAbs(k) {
			v.Key = gateway.Secret(filepath.Join(dir, k))
		}
	}
	return cfg, nil
}

// Parse parses a config document. env looks up os.environ/NAME references;
// nil means os.LookupEnv. The error, when not nil, is an *Error.
func Parse(data []byte, env func(string) (string, bool)) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	return parse(data, env, time.Now())
}

func parse(data []byte, env func(string) (string, bool), now time.Time) (*Config, error) {
	p := &parser{
		env:           env,
		now:           now,
		cfg:           &Config{MaxRequestBodyBytes: DefaultMaxRequestBodyBytes, droppedAliases: make(map[string]bool)},
		droppedGlobal: make(map[string]bool),
	}
	p.run(data)
	slices.SortStableFunc(p.cfg.Warnings, func(a, b Warning) int { return cmp.Compare(a.Line, b.Line) })
	if len(p.problems) > 0 {
		slices.SortStableFunc(p.problems, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
		return nil, &Error{File: "config.yaml", Problems: p.problems, Warnings: p.cfg.Warnings}
	}
	return p.cfg, nil
}
