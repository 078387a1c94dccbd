package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regate/gateway/gateway/mock"
)

// The shape of TestTimingForbiddenVsNonexistent (issue 16).
const (
	timingRounds = 3
	timingWarm   = 5 // requests per name and route before the measurement
	timingKey    = "sk-timing-client-key-01"
)

// timingConfig is a catalog of realistic size on {{UP}}: 600 model groups
// model-000…599 (model-100…299 in the access group premium), 40 global
// aliases (alias-00…09 → model-3NN, alias-10…19 → alias-0N, alias-20…29 →
// alias-1N: chains of one to three hops; alias-30…39 → model-0NN) and 20
// wildcard groups vendor-00/* … vendor-19/*. The key's team allows
// model-000…079 and the globs vendor-00/* and vendor-01/*.
func timingConfig() string {
	var b strings.Builder
	b.WriteString("model_list:\n")
	for i := range 600 {
		fmt.Fprintf(&b, "  - model_name: model-%03d\n    litellm_params: {model: openai/model-%03d, api_base: \"{{UP}}\", api_key: sk-upstream-provider-secret}\n", i, i)
		if i >= 100 && i < 300 {
			b.WriteString("    model_info: {access_groups: [premium]}\n")
		}
	}
	for i := range 20 {
		fmt.Fprintf(&b, "  - model_name: \"vendor-%02d/*\"\n    litellm_params: {model: \"openai/*\", api_base: \"{{UP}}\", api_key: sk-upstream-provider-secret}\n", i)
	}
	b.WriteString("router_settings:\n  model_group_alias:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "    alias-%02d: model-%03d\n", i, 300+i)
		fmt.Fprintf(&b, "    alias-%02d: alias-%02d\n", 10+i, i)
		fmt.Fprintf(&b, "    alias-%02d: alias-%02d\n", 20+i, 10+i)
		fmt.Fprintf(&b, "    alias-%02d: model-%03d\n", 30+i, i)
	}
	allow := []string{`"vendor-00/*"`, `"vendor-01/*"`}
	for i := range 80 {
		allow = append(allow, fmt.Sprintf("model-%03d", i))
	}
	fmt.Fprintf(&b, `general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  teams:
    - {team_id: probe, models: [%s]}
  keys:
    - {key: %s, key_alias: timing, team_id: probe}
`, strings.Join(allow, ", "), timingKey)
	return b.String()
}

// timingNames are the names probed: forbidden ones exist but the key may
// not use them (groups, aliases three hops deep, names a wildcard serves);
// nonexistent ones have the same lengths and shapes and resolve to nothing.
func timingNames() (forbidden, nonexistent []string) {
	for i := range 20 {
		forbidden = append(forbidden, fmt.Sprintf("model-%03d", 200+i))
		nonexistent = append(nonexistent, fmt.Sprintf("model-%03d", 700+i))
	}
	for i := range 10 {
		forbidden = append(forbidden, fmt.Sprintf("alias-%02d", 20+i))
		nonexistent = append(nonexistent, fmt.Sprintf("alias-%02d", 40+i))
		forbidden = append(forbidden, fmt.Sprintf("vendor-%02d/chat-%d", 10+i, i))
		nonexistent = append(nonexistent, fmt.Sprintf("vendor-%02d/chat-%d", 20+i, i))
	}
	return forbidden, nonexistent
}

// timingProbe is one request of the measurement.
type timingProbe struct {
	kind  int // 0 forbidden, 1 nonexistent
	route int // 0 chat completions, 1 GET /v1/models/{id}, 2 chat completions with a new name
	name  string
}

var timingKinds = []string{"forbidden", "nonexistent"}
var timingRoutes = []string{"chat completions", "GET /v1/models/{id}", "chat completions, a new name each time"}

// TestTimingForbiddenVsNonexistent checks DESIGN §2 on time: a model that
// exists but the key may not use and a model that does not exist must not
// be told apart by how long their 404 takes. The real binary
// (GOMAXPROCS=1) serves timingConfig; requests are sent one at a time over
// one kept-alive connection and timed by the client, REGATE_TIMING of each
// kind and route per round (the test is skipped without it), in two
// phases per round, each in random interleaved order: forbidden and
// nonexistent names (timingNames, each asked a few times before) as chat
// completions and as GET /v1/models/{id}; then chat completions for names
// never asked before (forbidden: names a wildcard serves; nonexistent: the
// same shape). Each kind's samples are split at random into two halves:
// the larger |median(half 1) − median(half 2)| is the round's noise, the
// spread of one measurement between two sets of the same kind. Over the
// rounds, the mean of |median(forbidden) − median(nonexistent)| must be
// below the mean noise, for repeated names and for new ones (whose
// decisions the principal's memo cannot answer and whose resolutions the
// catalog has not cached). Every answer must also be the same 404 but for
// the model's name, with the same header names. The figures are logged as
// "timing: …" lines for cmd/benchreport.
func TestTimingForbiddenVsNonexistent(t *testing.T) {
	spec := os.Getenv("REGATE_TIMING")
	if spec == "" {
		t.Skip("set REGATE_TIMING to the samples per kind and route (5000) to measure")
	}
	n, err := strconv.Atoi(spec)
	if err != nil || n < 100 {
		t.Fatalf("REGATE_TIMING=%q: want a number of samples, at least 100", spec)
	}
	bin := buildGateway(t)
	up := httptest.NewServer(mock.New(mock.Config{}))
	t.Cleanup(up.Close)
	p := startGatewayProcess(t, bin, timingConfig(), up.URL+"/v1", "GOMAXPROCS=1", "OTEL_TRACES_EXPORTER=none")
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
	forbidden, nonexistent := timingNames()
	names := [][]string{forbidden, nonexistent}

	var shape [3][2]string // header names of the first answer of each kind and route
	send := func(pr timingProbe) time.Duration {
		var req *http.Request
		if pr.route != 1 {
			req, _ = http.NewRequest(http.MethodPost, p.url+"/v1/chat/completions",
				strings.NewReader(`{"model":"`+pr.name+`","messages":[{"role":"user","content":"hi"}]}`))
			req.Header.Set("Content-Type", "application/json")
		} else {
			req, _ = http.NewRequest(http.MethodGet, p.url+"/v1/models/"+pr.name, nil)
		}
		req.Header.Set("Authorization", "Bearer "+timingKey)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %q: %v", timingRoutes[pr.route], pr.name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"error":{"message":"The model ` + "`" + pr.name + "`" + ` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`
		if resp.StatusCode != http.StatusNotFound || !jsonEqual(body, want) {
			t.Fatalf("%s %q (%s) = %d %s, want 404 %s", timingRoutes[pr.route], pr.name, timingKinds[pr.kind], resp.StatusCode, body, want)
		}
		var hs []string
		for k := range resp.Header {
			hs = append(hs, k)
		}
		slices.Sort(hs)
		h := strings.Join(hs, ",")
		if s := &shape[pr.route][pr.kind]; *s == "" {
			*s = h
		} else if *s != h {
			t.Fatalf("%s %q: header names %s, earlier %s", timingRoutes[pr.route], pr.name, h, *s)
		}
		return d
	}

	for range timingWarm {
		for k := range 2 {
			for _, name := range names[k] {
				for r := range 2 {
					send(timingProbe{k, r, name})
				}
			}
		}
	}

	type figures struct {
		med   [2]float64
		noise float64
	}
	var rounds [timingRounds][3]figures
	seq := 0
	for round := range timingRounds {
		// Two phases: names asked again and again (chat completions and
		// GET /v1/models/{id}), then names never asked before (chat
		// completions; forbidden ones a wildcard serves, vendor-10/* …
		// vendor-19/*, nonexistent ones of the same shape). New names fill
		// the principal's decision memo, which then starts over; kept apart,
		// the first phase measures repeated names as such.
		warm := make([]timingProbe, 0, 4*n)
		cold := make([]timingProbe, 0, 2*n)
		for k := range 2 {
			for r := range 2 {
				for range n {
					warm = append(warm, timingProbe{k, r, names[k][rand.IntN(len(names[k]))]})
				}
			}
			for range n {
				seq++
				cold = append(cold, timingProbe{k, 2, fmt.Sprintf("vendor-%02d/fresh-%07d", 10+10*k+seq%10, seq)})
			}
		}
		var samples [3][2][]float64 // route, kind: µs
		for _, probes := range [][]timingProbe{warm, cold} {
			rand.Shuffle(len(probes), func(i, j int) { probes[i], probes[j] = probes[j], probes[i] })
			for _, pr := range probes {
				samples[pr.route][pr.kind] = append(samples[pr.route][pr.kind], float64(send(pr))/1e3)
			}
		}
		for r := range 3 {
			f := &rounds[round][r]
			for k := range 2 {
				s := samples[r][k]
				f.med[k] = median(s)
				rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
				f.noise = max(f.noise, math.Abs(median(s[:len(s)/2])-median(s[len(s)/2:])))
			}
			t.Logf("timing: round %d, %s: median forbidden %.1f µs, nonexistent %.1f µs, difference %+.1f µs; noise (two random halves of one kind) %.1f µs",
				round+1, timingRoutes[r], f.med[0], f.med[1], f.med[0]-f.med[1], f.noise)
		}
	}
	for r := range 3 {
		if shape[r][0] != shape[r][1] {
			t.Errorf("%s: header names differ: forbidden %s, nonexistent %s", timingRoutes[r], shape[r][0], shape[r][1])
		}
	}
	for r := range 3 {
		var diff, noise float64
		var lo, hi [2]float64
		for k := range 2 {
			lo[k], hi[k] = math.Inf(1), math.Inf(-1)
		}
		for _, rf := range rounds {
			f := rf[r]
			diff += math.Abs(f.med[0]-f.med[1]) / timingRounds
			noise += f.noise / timingRounds
			for k := range 2 {
				lo[k], hi[k] = min(lo[k], f.med[k]), max(hi[k], f.med[k])
			}
		}
		verdict := "met"
		if diff >= noise {
			verdict = "NOT met"
			t.Errorf("%s: forbidden and nonexistent models differ by %.1f µs (median), more than the noise %.1f µs", timingRoutes[r], diff, noise)
		}
		t.Logf("timing: %s, %d samples of each kind per round, %d rounds: mean |median difference| %.1f µs, mean noise %.1f µs (requirement: difference < noise): %s; run-to-run spread of the medians (max − min over the rounds): forbidden %.1f µs, nonexistent %.1f µs",
			timingRoutes[r], n, timingRounds, diff, noise, verdict, hi[0]-lo[0], hi[1]-lo[1])
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(a []byte, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}
