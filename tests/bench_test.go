package tests

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"
)

// benchChat sends b.N non-streaming chat calls to url and reports the p50
// latency in microseconds besides ns/op.
func benchChat(b *testing.B, url, key, model string) {
	b.Helper()
	body := chatBody(model)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	}
}

// BenchmarkChat compares a non-streaming chat call sent straight to the
// upstream with the same call through the gateway (auth, alias resolution,
// policy decision, proxy). The difference of the p50s is the gateway's added
// latency.
func BenchmarkChat(b *testing.B) {
	up := startUpstream(b)
	g := startGateway(b, seedConfig, up)
	b.Run("direct", func(b *testing.B) { benchChat(b, up.URL, "sk-upstream-provider-secret", "qwen/qwen3.5-flash-02-23") })
	b.Run("gateway", func(b *testing.B) { benchChat(b, g.URL, "sk-seed2-target-only", "AgentX-LLM") })
}
