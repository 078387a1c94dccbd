package rego

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	oparego "github.com/open-policy-agent/opa/v1/rego"

	"github.com/regate/gateway/bundles"
	"github.com/regate/gateway/gateway"
)

// refGlobMatch is DESIGN §5's allow-list glob written independently of
// the policy and of globindex.go: "*" matches any run of characters (none
// included, "/" included), everything else is literal. It translates the
// entry to an anchored regular expression.
func refGlobMatch(entry, name string) bool {
	parts := strings.Split(entry, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(?s)\A` + strings.Join(parts, ".*") + `\z`).MatchString(name)
}

// FuzzAllowListGlob checks an allow-list entry against a model name three
// ways against refGlobMatch: the Go matcher the policy engine indexes
// globs with (compileGlob), the default bundle's own glob test
// (glob.match with _glob_pattern), and the default policy's verdict for a
// key whose allow-list is that one entry and a model whose chain is that
// one name (evaluated through the Engine, as the gateway does).
func FuzzAllowListGlob(f *testing.F) {
	for _, c := range [][2]string{
		{"bedrock/*", "bedrockz/x"}, {"bedrock/*", "bedrock/x"}, {"openai/*", "openai/gpt-4o"},
		{"gpt-4o", "gpt-4o"}, {"gpt-4o", "GPT-4O"}, {"*-mini", "gpt-4o-mini"}, {"a.b", "axb"},
		{"*ab*ab*", "xab"}, {"*ab*ab*", "abab"}, {"a*a", "a"}, {"a**b", "ab"}, {"é*", "éa"},
		{"[ab]*", "a"}, {"{a,b}*", "a"}, {"\\*", "\\x"}, {"?*", "x"}, {"a*", "a\nb"},
		{"*", "anything"}, {"all-proxy-models", "x"}, {"vendor-*/chat", "vendor-x/chat/chat"},
	} {
		f.Add(c[0], c[1])
	}
	src, err := fs.ReadFile(bundles.Default, "models.rego")
	if err != nil {
		f.Fatal(err)
	}
	pq, err := oparego.New(
		oparego.Query(`glob.match(data.gateway.authz._glob_pattern(input.glob), null, input.name)`),
		oparego.Module("models.rego", string(src)),
	).PrepareForEval(f.Context())
	if err != nil {
		f.Fatal(err)
	}
	eng, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, entry, name string) {
		// Names and entries come from JSON and YAML: valid UTF-8.
		if !utf8.ValidString(entry) || !utf8.ValidString(name) || len(entry) > 200 || len(name) > 200 {
			return
		}
		want := refGlobMatch(entry, name)
		if got := compileGlob(entry).match(name); got != want {
			t.Fatalf("compileGlob(%q).match(%q) = %t, want %t", entry, name, got, want)
		}
		if strings.Contains(entry, "*") {
			rs, err := pq.Eval(t.Context(), oparego.EvalInput(map[string]any{"glob": entry, "name": name}))
			got := err == nil && len(rs) == 1 && rs.Allowed()
			if err != nil || got != want {
				t.Fatalf("policy glob.match(_glob_pattern(%q), null, %q) = %t (%v), want %t", entry, name, got, err, want)
			}
		}

		// The policy's verdict. Special values mean more than their text.
		switch entry {
		case "*", "all-proxy-models":
			want = true
		case "all-team-models", "no-default-models":
			want = false // a key without a team; a user-only value
		}
		if name == "" {
			return // the gateway never resolves an empty name
		}
		in := &gateway.Input{
			Request: gateway.RequestInfo{ID: "fuzz", Route: gateway.RouteInference, Operation: "chat.completions", Method: "POST", Path: "/v1/chat/completions"},
			Principal: &gateway.Principal{Key: &gateway.Key{
				ID: gateway.HashKey("sk-fuzz\x00" + entry), Alias: "fuzz", Models: []string{entry},
			}},
			Model: &gateway.Resolution{
				Requested: name, Found: true, Resolved: name, Names: []string{name},
				Chain: []gateway.ChainLink{{Name: name, Kind: gateway.LinkModelGroup}},
			},
			Now: now,
		}
		d, err := eng.Decide(t.Context(), in)
		if err != nil {
			t.Fatalf("Decide(key models [%q], model %q) error = %v", entry, name, err)
		}
		if d.Allow != want {
			t.Fatalf("Decide(key models [%q], model %q).Allow = %t, want %t (%+v)", entry, name, d.Allow, want, d)
		}
	})
}
