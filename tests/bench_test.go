package tests

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/regate/gateway/cmd/gateway/app"
	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/store/postgres/pgtest"
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
		postChat(b, client, url, key, body)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	}
}

// postChat sends one chat request to url and reads the answer; any status
// but 200 fails tb.
func postChat(tb testing.TB, client *http.Client, url, key string, body []byte) {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("status %d", resp.StatusCode)
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

// BenchmarkPrincipalLookup compares authentication lookups: the in-memory
// store, PostgreSQL without the cache (one query joining key, team and
// user), and PostgreSQL behind the per-replica cache.
func BenchmarkPrincipalLookup(b *testing.B) {
	up := startUpstream(b)
	mem := startGateway(b, seedConfig, up)
	pg := startGatewayWith(b, seedConfig, up, app.Options{DatabaseURL: pgtest.Start(b).URL})
	hash := gateway.HashKey("sk-seed2-target-only")
	ctx := context.Background()
	for _, bc := range []struct {
		name  string
		store gateway.PrincipalStore
	}{
		{"memory", mem.Store},
		{"postgres-uncached", pg.Store},
		{"postgres-cached", pg.Cache},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.store.PrincipalByKeyHash(ctx, hash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChatStores is a chat call through the gateway with the principal
// served from the cache over PostgreSQL, against the in-memory store.
func BenchmarkChatStores(b *testing.B) {
	up := startUpstream(b)
	mem := startGateway(b, seedConfig, up)
	pg := startGatewayWith(b, seedConfig, up, app.Options{DatabaseURL: pgtest.Start(b).URL})
	b.Run("memory", func(b *testing.B) { benchChat(b, mem.URL, "sk-seed2-target-only", "AgentX-LLM") })
	b.Run("postgres-cached", func(b *testing.B) { benchChat(b, pg.URL, "sk-seed2-target-only", "AgentX-LLM") })
}
