package tests

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/regate/gateway/gateway"
)

// Entry pools the generator draws allow-lists from: exact names, aliases,
// provider names, access groups, globs, special values and names of nothing.
var (
	exactPool    = []string{"gpt-4o", "gpt-4o-mini", "openrouter/qwen/qwen3.5-flash-02-23", "Qwen/Qwen3-Coder-480B-A35B-Instruct-bfloat16", "ollama/llama3:8b"}
	aliasPool    = []string{"AgentX-LLM", "Qwen/Qwen3-Coder-480B-A35B-Instruct", "secret-alias", "coder", "fast"}
	providerPool = []string{"openai/gpt-4o", "hosted_vllm/Qwen/Qwen3-Coder-480B-A35B-Instruct-bfloat16", "openai/gpt-4", "openai/o1-mini"}
	groupPool    = []string{"default-models", "restricted-models"}
	globPool     = []string{"openai/*", "openai/o1-*", "*qwen*", "Qwen/*", "gpt-4o*", "ollama/*", "*-mini", "hosted_vllm/*"}
	specialKey   = []string{"*", "all-proxy-models", "all-team-models"}
	specialUser  = []string{"*", "all-proxy-models", "no-default-models"}
	ghostPool    = []string{"ghost-model", "GPT-4O"}
)

// probeNames are asked about for every principal besides its candidates:
// wildcard-served names, near misses, patterns as literal names.
var probeNames = []string{
	"openai/gpt-4", "openai/gpt-4.1-nano", "openai/o1-mini", "openai/o1-preview",
	"ghost-model", "GPT-4O", "gpt-4o ", "gpt-4о", "openai/*", "openai/o1-*", "*",
	"secret-alias", "coder", "fast", "all-proxy-models", "default-models",
}

func pick(r *rand.Rand, pools ...[]string) []string {
	n := r.IntN(4) // 0..3 entries; 0 means the layer does not restrict
	var out []string
	for range n {
		p := pools[r.IntN(len(pools))]
		out = append(out, p[r.IntN(len(p))])
	}
	return out
}

// randomPrincipal stores a key with a random team and user and returns its
// plaintext.
func randomPrincipal(t *testing.T, g *gw, r *rand.Rand, i int) string {
	t.Helper()
	ctx := t.Context()
	key := gateway.Key{Models: pick(r, exactPool, aliasPool, providerPool, groupPool, globPool, specialKey, ghostPool)}
	if r.IntN(3) == 0 {
		key.Aliases = map[string]string{"coder": []string{"gpt-4o", "AgentX-LLM", "openai/o1-mini"}[r.IntN(3)]}
	}
	if r.IntN(3) > 0 {
		team := gateway.Team{ID: fmt.Sprintf("team-%d", i), Models: pick(r, exactPool, aliasPool, providerPool, groupPool, globPool, []string{"*", "all-proxy-models"}, ghostPool)}
		if r.IntN(3) == 0 {
			team.ModelAliases = map[string]string{"fast": []string{"gpt-4o-mini", "openai/gpt-4", "Qwen/Qwen3-Coder-480B-A35B-Instruct"}[r.IntN(3)]}
		}
		if err := g.Store.CreateTeam(ctx, &team); err != nil {
			t.Fatal(err)
		}
		key.TeamID = team.ID
	}
	if r.IntN(3) > 0 {
		user := gateway.User{ID: fmt.Sprintf("user-%d", i), Models: pick(r, exactPool, aliasPool, providerPool, groupPool, globPool, specialUser, ghostPool)}
		if err := g.Store.CreateUser(ctx, &user, nil); err != nil {
			t.Fatal(err)
		}
		key.UserID = user.ID
	}
	plain := fmt.Sprintf("sk-invariant-%03d-%08x", i, r.Uint32())
	key.ID, key.Display, key.Alias = gateway.HashKey(plain), gateway.Redact(plain), fmt.Sprintf("inv-%d", i)
	if err := g.Store.CreateKey(ctx, &key); err != nil {
		t.Fatal(err)
	}
	return plain
}

// normalise removes the echoed model id and the per-request headers, so
// forbidden and unknown answers can be compared byte for byte.
func normalise(r response, model string) string {
	var b strings.Builder
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		switch k {
		case "X-Request-Id", "Date", "Content-Length":
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(r.Header[k], ","))
	}
	fmt.Fprintf(&b, "%d\n", r.Status)
	b.Write(bytes.ReplaceAll(r.Body, []byte("`"+model+"`"), []byte("`<M>`")))
	return b.String()
}

// TestInvariantListRetrieveCall checks DESIGN §2 over 200 generated
// principals: listed ⇒ retrievable, retrievable ⇔ callable, and forbidden
// and unknown models answer identically.
func TestInvariantListRetrieveCall(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	seed := uint64(20261125)
	r := rand.New(rand.NewPCG(seed, seed))
	t.Logf("generator seed %d", seed)

	// The reference 404: an unknown model asked by the master key.
	unknownGet := normalise(g.do(t, http.MethodGet, "/v1/models/no-such-model-xyz", "sk-master-test-0000", "", nil), "no-such-model-xyz")
	unknownChat := normalise(g.do(t, http.MethodPost, "/v1/chat/completions", "sk-master-test-0000", "application/json", chatBody("no-such-model-xyz")), "no-such-model-xyz")

	var allowed, denied, listedTotal, emptyLists int
	for i := range 200 {
		key := randomPrincipal(t, g, r, i)
		c := g.client(key)
		page, err := c.Models.List(t.Context())
		if err != nil {
			t.Fatalf("principal %d: Models.List: %v", i, err)
		}
		var listed []string
		for _, m := range page.Data {
			listed = append(listed, m.ID)
		}
		listedTotal += len(listed)
		if len(listed) == 0 {
			emptyLists++
		}
		p, err := g.Store.PrincipalByKeyHash(t.Context(), gateway.HashKey(key))
		if err != nil {
			t.Fatal(err)
		}
		names := slices.Clone(probeNames)
		for _, cand := range g.Config.Catalog.Candidates(p.KeyAliases(), p.TeamAliases()).Items {
			names = append(names, cand.ID)
		}
		for _, id := range listed {
			if !slices.Contains(names, id) {
				t.Errorf("principal %d: listed %q is not a candidate", i, id)
			}
		}
		for _, model := range names {
			_, getErr := c.Models.Get(t.Context(), model)
			getStatus := apiStatus(t, getErr)
			_, chatErr := c.Chat.Completions.New(t.Context(), chatParams(model))
			chatStatus := apiStatus(t, chatErr)
			isListed := slices.Contains(listed, model)

			switch {
			case isListed && getStatus != 200:
				t.Errorf("principal %d (%+v): %q listed but retrieve = %d", i, p.Key.Models, model, getStatus)
			case (getStatus == 200) != (chatStatus == 200):
				t.Errorf("principal %d: %q retrieve = %d but chat = %d", i, model, getStatus, chatStatus)
			case getStatus != 200 && getStatus != 404:
				t.Errorf("principal %d: %q retrieve = %d, want 200 or 404", i, model, getStatus)
			}
			if getStatus == 200 {
				allowed++
				continue
			}
			denied++
			// Forbidden and unknown must be indistinguishable (raw bytes).
			if got := normalise(g.do(t, http.MethodGet, "/v1/models/"+url.PathEscape(model), key, "", nil), model); got != unknownGet {
				t.Errorf("principal %d: 404 for %q differs from unknown:\n%s\nwant\n%s", i, model, got, unknownGet)
			}
			if got := normalise(g.do(t, http.MethodPost, "/v1/chat/completions", key, "application/json", chatBody(model)), model); got != unknownChat {
				t.Errorf("principal %d: chat 404 for %q differs from unknown:\n%s\nwant\n%s", i, model, got, unknownChat)
			}
		}
	}
	t.Logf("checked %d allowed and %d denied (principal, model) pairs; %d listed ids; %d empty lists", allowed, denied, listedTotal, emptyLists)
	// The generator must exercise both sides, or the test proves nothing.
	if allowed < 500 || denied < 500 || emptyLists == 0 || emptyLists == 200 {
		t.Errorf("generator too one-sided: %d allowed, %d denied, %d empty lists", allowed, denied, emptyLists)
	}
}
