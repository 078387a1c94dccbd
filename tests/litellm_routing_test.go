package tests

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The LiteLLM configs of gateway/config/testdata/litellm route as LiteLLM
// documents their settings (DESIGN §12), with every deployment the gateway
// serves pointed at a server of the test's.

// litellmConfig reads a LiteLLM config from the config tests' testdata,
// points the listed model_list entries at servers (entry index → server),
// and appends gateway_settings when extra is not empty.
func litellmConfig(t *testing.T, file string, servers map[int]*deploymentServer, extra string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "gateway", "config", "testdata", "litellm", file))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "model_list" {
			continue
		}
		for idx, item := range root.Content[i+1].Content {
			s, ok := servers[idx]
			if !ok {
				continue
			}
			params := mappingValue(item, "litellm_params")
			if v := mappingValue(params, "api_base"); v != nil {
				v.Value = s.URL
			} else {
				params.Content = append(params.Content,
					&yaml.Node{Kind: yaml.ScalarNode, Value: "api_base"},
					&yaml.Node{Kind: yaml.ScalarNode, Value: s.URL})
			}
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(out) + extra
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func TestLiteLLMConfigsRoute(t *testing.T) {
	t.Run("load_balancer.yaml", func(t *testing.T) {
		// Two deployments with rpm 3 (beside litellm_params, as this
		// config writes them) and one without: simple-shuffle weighs by
		// rpm, and rpm caps each deployment's minute.
		s := []*deploymentServer{newDeploymentServer(t), newDeploymentServer(t), newDeploymentServer(t)}
		cfg := litellmConfig(t, "load_balancer.yaml", map[int]*deploymentServer{0: s[0], 1: s[1], 2: s[2]}, `
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  keys:
    - {key: `+routingKey+`, models: [chat]}
`)
		g := startGateway(t, cfg, nil)
		for i := range 9 {
			if r := routedChat(t, g, "chat"); r.Status != http.StatusOK {
				t.Fatalf("call %d: %d %s", i, r.Status, r.Body)
			}
		}
		if a, b, c := s[0].calls.Load(), s[1].calls.Load(), s[2].calls.Load(); a != 3 || b != 3 || c != 3 {
			t.Errorf("calls per deployment = %d, %d, %d; want 3, 3 (their rpm caps), then 3 to the one without", a, b, c)
		}
	})
	t.Run("multi_provider.yaml", func(t *testing.T) {
		// latency-based-routing, num_retries 3 (router_settings over
		// litellm_settings' 2), and a fallback to a group with no
		// deployment the gateway serves.
		openai, groq := newDeploymentServer(t), newDeploymentServer(t)
		openai.set(status(http.StatusInternalServerError, "boom"))
		groq.set(status(http.StatusInternalServerError, "boom"))
		g := startGateway(t, litellmConfig(t, "multi_provider.yaml", map[int]*deploymentServer{2: openai, 4: groq}, ""), nil)
		r := g.do(t, http.MethodPost, "/v1/chat/completions", "sk-research-key", "application/json", chatBody("gpt"))
		if r.Status != http.StatusInternalServerError || strings.Contains(string(r.Body), "claude") {
			t.Errorf("answer %d %s, want the group's 500 naming nothing else", r.Status, r.Body)
		}
		if a, b := openai.calls.Load(), groq.calls.Load(); a+b != 4 || a == 0 || b == 0 {
			t.Errorf("attempts: openai %d, groq %d; want 4 (num_retries 3) over both", a, b)
		}
	})
	t.Run("proxy_server.yaml", func(t *testing.T) {
		// context_window_fallbacks: chat-eu → chat-large.
		eu, euAzure, large := newDeploymentServer(t), newDeploymentServer(t), newDeploymentServer(t)
		eu.set(status(http.StatusBadRequest, "context_length_exceeded"))
		euAzure.set(status(http.StatusBadRequest, "context_length_exceeded"))
		g := startGateway(t, litellmConfig(t, "proxy_server.yaml", map[int]*deploymentServer{0: eu, 1: euAzure, 2: large}, `
gateway_settings:
  keys:
    - {key: `+routingKey+`, models: [chat-eu, chat-large]}
`), nil)
		r := routedChat(t, g, "chat-eu")
		if r.Status != http.StatusOK || r.Header.Get("X-Gateway-Model-Group") != "chat-large" || large.calls.Load() != 1 {
			t.Errorf("answer %d group %q, chat-large saw %d calls; want chat-large to serve", r.Status, r.Header.Get("X-Gateway-Model-Group"), large.calls.Load())
		}
		if eu.calls.Load()+euAzure.calls.Load() != 1 {
			t.Errorf("chat-eu saw %d calls, want 1: a context-window error is not retried in the group", eu.calls.Load()+euAzure.calls.Load())
		}
	})
}
