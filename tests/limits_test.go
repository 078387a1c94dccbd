package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regate/gateway/cmd/gateway/app"
)

// pricedConfig prices gpt-4o (and its aliases) so that one call of the
// usage upstream costs 80×0.001 + 20×0.0005 + 50×0.002 = 0.19 USD.
const pricedConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", api_key: sk-upstream-provider-secret, input_cost_per_token: 0.001, output_cost_per_token: 0.002, cache_read_input_token_cost: 0.0005}
  - model_name: nousage
    litellm_params: {model: openai/nousage, api_base: "{{UP}}", input_cost_per_token: 0.001}
  - model_name: broken
    litellm_params: {model: openai/broken, api_base: "{{UP}}", input_cost_per_token: 0.001}
  - model_name: slow
    litellm_params: {model: openai/slow, api_base: "{{UP}}", input_cost_per_token: 0.001}
  - model_name: unpriced
    litellm_params: {model: openai/unpriced-model-nobody-knows, api_base: "{{UP}}"}
  - model_name: secret-model
    litellm_params: {model: openai/secret-model, api_base: "{{UP}}", input_cost_per_token: 0.001}
general_settings:
  master_key: sk-master-test-0000
`

// callCost is what one gpt-4o call of the usage upstream costs.
const callCost = 0.19

// logLines returns the JSON log lines in l whose msg is msg.
func logLines(l *syncBuffer, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// limitsGateway starts a gateway on pricedConfig with the usage upstream,
// on the store given by url, with a settable clock and a captured log.
func limitsGateway(t *testing.T, url string) (*gw, *clock, *syncBuffer) {
	t.Helper()
	up := startUpstream(t)
	up.setHandler(usageUpstream())
	c := &clock{t: time.Now().UTC()}
	logs := &syncBuffer{}
	g := startGatewayWith(t, pricedConfig, up, app.Options{
		DatabaseURL: url, Now: c.now,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	return g, c, logs
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// chat sends a non-streamed chat call with key for model.
func (g *gw) chat(t *testing.T, key, model string) response {
	t.Helper()
	return g.do(t, http.MethodPost, "/v1/chat/completions", key, "application/json", chatBody(model))
}

// limitedKey makes a key (through the admin API) in a new team with a new
// user; limits go on the layer named.
func limitedKey(t *testing.T, g *gw, name, layer string, limits map[string]any) string {
	t.Helper()
	team := map[string]any{"team_id": "team-" + name, "models": []string{}}
	user := map[string]any{"user_id": "user-" + name, "models": []string{}}
	key := map[string]any{"team_id": "team-" + name, "user_id": "user-" + name, "key_alias": "key-" + name}
	target := map[string]map[string]any{"key": key, "team": team, "user": user}[layer]
	for k, v := range limits {
		target[k] = v
	}
	mustJSON(t, g.admin(t, http.MethodPost, "/team/new", team), &struct{}{})
	mustJSON(t, g.admin(t, http.MethodPost, "/user/new", user), &struct{}{})
	return genKey(t, g, key)
}

// wantError checks an OpenAI error answer.
func wantError(t *testing.T, r response, status int, typ, code string) errorEnvelope {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d %s, want %d", r.Status, r.Body, status)
	}
	e := decodeError(t, r.Body)
	if e.Error.Type != typ || e.Error.Code == nil || *e.Error.Code != code {
		t.Errorf("error = %s, want type %q code %q", r.Body, typ, code)
	}
	return e
}

func TestLimitsEachKindOnEachLayer(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			g, _, _ := limitsGateway(t, sk.url(t))
			for _, layer := range []string{"key", "team", "user"} {
				t.Run(layer+"/budget", func(t *testing.T) {
					key := limitedKey(t, g, layer+"-budget", layer, map[string]any{"max_budget": 0.3})
					for i := range 2 {
						if r := g.chat(t, key, "gpt-4o"); r.Status != 200 {
							t.Fatalf("call %d = %d %s", i, r.Status, r.Body)
						}
					}
					e := wantError(t, g.chat(t, key, "gpt-4o"), 400, "budget_exceeded", "budget_exceeded")
					if !strings.HasPrefix(e.Error.Message, "Budget has been exceeded") || !strings.Contains(e.Error.Message, layer) || e.Error.Param != nil {
						t.Errorf("budget message = %q param %v", e.Error.Message, e.Error.Param)
					}
				})
				t.Run(layer+"/rpm", func(t *testing.T) {
					key := limitedKey(t, g, layer+"-rpm", layer, map[string]any{"rpm_limit": 2})
					for i := range 2 {
						r := g.chat(t, key, "gpt-4o")
						if r.Status != 200 {
							t.Fatalf("call %d = %d %s", i, r.Status, r.Body)
						}
						if l, rem := r.Header.Get("X-Ratelimit-Limit-Requests"), r.Header.Get("X-Ratelimit-Remaining-Requests"); l != "2" || rem != strconv.Itoa(1-i) || r.Header.Get("X-Ratelimit-Reset-Requests") == "" {
							t.Errorf("call %d: x-ratelimit-*-requests = %q, %q, %q", i, l, rem, r.Header.Get("X-Ratelimit-Reset-Requests"))
						}
					}
					r := g.chat(t, key, "gpt-4o")
					e := wantError(t, r, 429, "requests", "rate_limit_exceeded")
					if r.Header.Get("X-Ratelimit-Limit-Requests") != "2" || r.Header.Get("X-Ratelimit-Remaining-Requests") != "0" {
						t.Errorf("429: x-ratelimit-*-requests = %q, %q, want 2, 0", r.Header.Get("X-Ratelimit-Limit-Requests"), r.Header.Get("X-Ratelimit-Remaining-Requests"))
					}
					// Other answers the policy allows carry them too, and count
					// no call.
					for _, path := range []string{"/v1/models", "/v1/models/gpt-4o"} {
						lr := g.do(t, http.MethodGet, path, key, "", nil)
						if lr.Status != 200 || lr.Header.Get("X-Ratelimit-Remaining-Requests") != "0" || lr.Header.Get("X-Ratelimit-Limit-Requests") != "2" {
							t.Errorf("GET %s = %d, x-ratelimit-*-requests %q, %q", path, lr.Status, lr.Header.Get("X-Ratelimit-Limit-Requests"), lr.Header.Get("X-Ratelimit-Remaining-Requests"))
						}
					}
					retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
					if err != nil || retry < 1 || retry > 60 {
						t.Errorf("Retry-After = %q, want 1..60 s", r.Header.Get("Retry-After"))
					}
					if !strings.Contains(e.Error.Message, layer) || !strings.Contains(e.Error.Message, "requests per minute") ||
						strings.Contains(e.Error.Message, "team-"+layer) || strings.Contains(e.Error.Message, "user-"+layer) {
						t.Errorf("rpm message = %q: want the layer and kind, no id", e.Error.Message)
					}
				})
				t.Run(layer+"/tpm", func(t *testing.T) {
					key := limitedKey(t, g, layer+"-tpm", layer, map[string]any{"tpm_limit": 200})
					r := g.chat(t, key, "gpt-4o") // 150 tokens, known when it ends
					if r.Status != 200 || r.Header.Get("X-Ratelimit-Limit-Tokens") != "200" || r.Header.Get("X-Ratelimit-Remaining-Tokens") != "200" {
						t.Fatalf("first call = %d, tokens headers %q %q", r.Status, r.Header.Get("X-Ratelimit-Limit-Tokens"), r.Header.Get("X-Ratelimit-Remaining-Tokens"))
					}
					if r := g.chat(t, key, "gpt-4o"); r.Status != 200 || r.Header.Get("X-Ratelimit-Remaining-Tokens") != "50" {
						t.Fatalf("second call (150 of 200 used) = %d, remaining %q", r.Status, r.Header.Get("X-Ratelimit-Remaining-Tokens"))
					}
					r = g.chat(t, key, "gpt-4o") // 300 ≥ 200
					wantError(t, r, 429, "tokens", "rate_limit_exceeded")
					if r.Header.Get("Retry-After") == "" {
						t.Error("no Retry-After on a tpm refusal")
					}
				})
				t.Run(layer+"/parallel", func(t *testing.T) {
					key := limitedKey(t, g, layer+"-par", layer, map[string]any{"max_parallel_requests": 1})
					started := make(chan struct{})
					done := make(chan response)
					go func() {
						req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", bytes.NewReader(streamBody("slow")))
						req.Header.Set("Authorization", "Bearer "+key)
						res, err := http.DefaultClient.Do(req)
						if err != nil {
							done <- response{}
							return
						}
						defer res.Body.Close()
						br := bufio.NewReader(res.Body)
						_, _ = br.ReadString('\n') // the first event: the stream is open
						close(started)
						b, _ := io.ReadAll(br)
						done <- response{Status: res.StatusCode, Body: b}
					}()
					select {
					case <-started:
					case <-time.After(5 * time.Second):
						t.Fatal("the slow stream did not start")
					}
					wantError(t, g.chat(t, key, "gpt-4o"), 429, "requests", "rate_limit_exceeded")
					if r := <-done; r.Status != 200 || !strings.Contains(string(r.Body), "[DONE]") {
						t.Fatalf("slow stream = %d %q", r.Status, r.Body)
					}
					if r := g.chat(t, key, "gpt-4o"); r.Status != 200 {
						t.Errorf("after the stream's last byte = %d %s", r.Status, r.Body)
					}
				})
			}
		})
	}
}

// streamBody is a streamed chat body for model.
func streamBody(model string) []byte {
	return []byte(`{"model":"` + model + `","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
}

// TestLimitsAfterPolicy: a forbidden model is neither counted nor told a
// limit, and its 404 is the one of a model that does not exist.
func TestLimitsAfterPolicy(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) { testLimitsAfterPolicy(t, sk.url(t)) })
	}
}

func testLimitsAfterPolicy(t *testing.T, url string) {
	g, _, _ := limitsGateway(t, url)
	key := genKey(t, g, map[string]any{"models": []string{"gpt-4o"}, "rpm_limit": 1, "max_budget": 0.0001})
	forbidden := g.chat(t, key, "secret-model")
	missing := g.chat(t, key, "no-such-model")
	if forbidden.Status != 404 || missing.Status != 404 {
		t.Fatalf("forbidden = %d, missing = %d, want 404 both", forbidden.Status, missing.Status)
	}
	if got, want := strings.ReplaceAll(string(forbidden.Body), "secret-model", "M"), strings.ReplaceAll(string(missing.Body), "no-such-model", "M"); got != want {
		t.Errorf("forbidden body %s differs from missing body %s", got, want)
	}
	for _, r := range []response{forbidden, missing} {
		for h := range r.Header {
			if strings.HasPrefix(strings.ToLower(h), "x-ratelimit") || h == "Retry-After" {
				t.Errorf("a 404 carries %s", h)
			}
		}
	}
	// Neither 404 used the rpm limit of 1, nor spent anything.
	if r := g.chat(t, key, "gpt-4o"); r.Status != 200 {
		t.Fatalf("first allowed call = %d %s", r.Status, r.Body)
	}
}

// spendOf reads a key's spend and reset time from /key/info.
func spendOf(t *testing.T, g *gw, key string) (float64, *string) {
	t.Helper()
	var info struct {
		Info struct {
			Spend         float64 `json:"spend"`
			BudgetResetAt *string `json:"budget_reset_at"`
		} `json:"info"`
	}
	mustJSON(t, g.admin(t, http.MethodGet, "/key/info?key="+key, nil), &info)
	return info.Info.Spend, info.Info.BudgetResetAt
}

func TestBudgetResetAndSoftBudget(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			g, c, logs := limitsGateway(t, sk.url(t))
			key := genKey(t, g, map[string]any{"max_budget": 0.1, "budget_duration": "1h", "soft_budget": 0.05})
			if r := g.chat(t, key, "gpt-4o"); r.Status != 200 {
				t.Fatalf("first call = %d", r.Status)
			}
			spend, reset := spendOf(t, g, key)
			if math.Abs(spend-callCost) > 1e-9 || reset == nil {
				t.Errorf("spend = %v reset %v, want %v and a reset time", spend, reset, callCost)
			}
			wantError(t, g.chat(t, key, "gpt-4o"), 400, "budget_exceeded", "budget_exceeded")
			if n := len(logLines(logs, "soft budget crossed")); n != 1 {
				t.Errorf("soft budget log lines = %d, want 1", n)
			}
			if v := metricValue(t, g, `gateway_soft_budget_crossed_total{layer="key"}`); v < 1 {
				t.Errorf("gateway_soft_budget_crossed_total = %v", v)
			}
			if v := metricValue(t, g, `gateway_limited_total{kind="budget",layer="key"}`); v < 1 {
				t.Errorf("gateway_limited_total budget = %v", v)
			}
			c.add(time.Hour + time.Minute) // the period began when the key was made
			if r := g.chat(t, key, "gpt-4o"); r.Status != 200 {
				t.Errorf("after the budget period = %d %s", r.Status, r.Body)
			}
			if spend, _ := spendOf(t, g, key); math.Abs(spend-callCost) > 1e-9 {
				t.Errorf("spend in the new period = %v, want %v", spend, callCost)
			}
		})
	}
}

// metricValue reads one series from /metrics.
func metricValue(t *testing.T, g *gw, series string) float64 {
	t.Helper()
	r := g.do(t, http.MethodGet, "/metrics", "", "", nil)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// report reads /global/spend/report for today by group.
func report(t *testing.T, g *gw, c *clock, group string) map[string][3]float64 {
	t.Helper()
	day := c.now().UTC().Format(time.DateOnly)
	var rows []struct {
		Group            string  `json:"group"`
		Requests         float64 `json:"requests"`
		PromptTokens     float64 `json:"prompt_tokens"`
		CompletionTokens float64 `json:"completion_tokens"`
		Spend            float64 `json:"spend"`
	}
	mustJSON(t, g.admin(t, http.MethodGet, "/global/spend/report?start_date="+day+"&end_date="+day+"&group_by="+group, nil), &rows)
	out := map[string][3]float64{}
	for i, r := range rows {
		if i > 0 && r.Spend > rows[i-1].Spend {
			t.Errorf("report not ordered by spend: %+v", rows)
		}
		out[r.Group] = [3]float64{r.Requests, r.PromptTokens + r.CompletionTokens, r.Spend}
	}
	return out
}

func TestUsageFromAnswersAndStreams(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			g, c, logs := limitsGateway(t, sk.url(t))
			calls := []struct {
				name, path, body string
				tokens           float64 // prompt + completion counted
			}{
				{"chat", "/v1/chat/completions", string(chatBody("gpt-4o")), 150},
				{"completions", "/v1/completions", `{"model":"gpt-4o","prompt":"hi"}`, 150},
				{"embeddings", "/v1/embeddings", `{"model":"gpt-4o","input":"hi"}`, 100},
				{"responses", "/v1/responses", `{"model":"gpt-4o","input":"hi"}`, 150},
				{"chat stream", "/v1/chat/completions", string(streamBody("gpt-4o")), 150},
				{"chat stream with include_usage", "/v1/chat/completions", `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}`, 150},
				{"responses stream", "/v1/responses", `{"model":"gpt-4o","stream":true,"input":"hi"}`, 150},
				{"no usage", "/v1/chat/completions", string(chatBody("nousage")), 0},
				{"broken stream", "/v1/chat/completions", string(streamBody("broken")), 0},
				{"no price", "/v1/chat/completions", string(chatBody("unpriced")), 150},
			}
			for _, tc := range calls {
				t.Run(tc.name, func(t *testing.T) {
					key := genKey(t, g, map[string]any{"key_alias": tc.name})
					before := len(logLines(logs, "request"))
					r := g.do(t, http.MethodPost, tc.path, key, "application/json", []byte(tc.body))
					if r.Status != 200 {
						t.Fatalf("%s = %d %s", tc.path, r.Status, r.Body)
					}
					body := string(r.Body)
					switch tc.name {
					case "chat stream":
						// The client did not ask for usage: the usage chunk does
						// not reach it; the rest is the upstream's stream byte
						// for byte (with the "usage":null OpenAI writes in
						// each chunk once usage is asked for).
						if strings.Contains(body, `"usage":{`) || strings.Contains(body, `"choices":[]`) || strings.Count(body, "data: ") != 3 ||
							!strings.Contains(body, "Hello") || !strings.HasSuffix(body, "data: [DONE]\n\n") {
							t.Errorf("stream = %q, want the content and [DONE] without usage", body)
						}
					case "chat stream with include_usage":
						if !strings.Contains(body, `"choices":[],"usage":{"prompt_tokens":100`) {
							t.Errorf("stream = %q, want the usage chunk the client asked for", body)
						}
					}
					var keyID string
					for _, l := range logLines(logs, "request")[before:] {
						if l["key_alias"] != tc.name {
							continue
						}
						if l["prompt_tokens"].(float64)+l["completion_tokens"].(float64) != tc.tokens {
							t.Errorf("access log tokens = %v + %v, want %v", l["prompt_tokens"], l["completion_tokens"], tc.tokens)
						}
						if _, ok := l["cost_usd"]; !ok {
							t.Error("access log has no cost_usd")
						}
						keyID = "ok"
					}
					if keyID == "" {
						t.Error("no access log line for the call")
					}
				})
			}
			// The report by model: every call once, the tokens and cost each
			// deployment's prices give.
			byModel := report(t, g, c, "model")
			gpt := byModel["gpt-4o"]
			// chat, completions, responses, 3 streams at 0.19; embeddings 100 prompt tokens (none cached) at 0.001.
			wantSpend := 6*callCost + 100*0.001
			if gpt[0] != 7 || gpt[1] != 6*150+100 || math.Abs(gpt[2]-wantSpend) > 1e-6 {
				t.Errorf("gpt-4o report = %v, want 7 calls, %d tokens, %v USD", gpt, 6*150+100, wantSpend)
			}
			if u := byModel["unpriced"]; u[0] != 1 || u[1] != 150 || u[2] != 0 {
				t.Errorf("unpriced report = %v, want 1 call, 150 tokens, 0 USD", u)
			}
			if n := byModel["nousage"]; n[0] != 1 || n[1] != 0 {
				t.Errorf("nousage report = %v, want 1 call, 0 tokens", n)
			}
			if v := metricValue(t, g, `gateway_usage_unreported_total{model_group="nousage"}`); v != 1 {
				t.Errorf("gateway_usage_unreported_total nousage = %v, want 1", v)
			}
			if v := metricValue(t, g, `gateway_tokens_total{model_group="gpt-4o",type="completion"}`); v != 6*50 {
				t.Errorf("gateway_tokens_total completion = %v, want %d", v, 6*50)
			}
		})
	}
}

// TestTeamKeySpendsEveryLayer: a team key's call spends the key's, the
// team's and the user's budgets at once.
func TestTeamKeySpendsEveryLayer(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) { testTeamKeySpendsEveryLayer(t, sk.url(t)) })
	}
}

func testTeamKeySpendsEveryLayer(t *testing.T, url string) {
	g, c, _ := limitsGateway(t, url)
	key := limitedKey(t, g, "all", "team", map[string]any{"max_budget": 10})
	if r := g.chat(t, key, "gpt-4o"); r.Status != 200 {
		t.Fatal(r.Status)
	}
	var team struct {
		TeamInfo struct {
			Spend float64 `json:"spend"`
		} `json:"team_info"`
	}
	mustJSON(t, g.admin(t, http.MethodGet, "/team/info?team_id=team-all", nil), &team)
	var user struct {
		UserInfo struct {
			Spend float64 `json:"spend"`
		} `json:"user_info"`
	}
	mustJSON(t, g.admin(t, http.MethodGet, "/user/info?user_id=user-all", nil), &user)
	spend, _ := spendOf(t, g, key)
	for name, v := range map[string]float64{"key": spend, "team": team.TeamInfo.Spend, "user": user.UserInfo.Spend} {
		if math.Abs(v-callCost) > 1e-9 {
			t.Errorf("%s spend = %v, want %v", name, v, callCost)
		}
	}
	if r := report(t, g, c, "team")["team-all"]; r[0] != 1 {
		t.Errorf("team report = %v", r)
	}
}
