package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkProxy compares a non-streaming chat call through Proxy.Serve (a
// test edge that scans the body, then the proxy, over loopback HTTP) with the
// same upstream called directly.
func BenchmarkProxy(b *testing.B) {
	answer := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"up-a",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the benchmark upstream."},` +
		`"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":500,"completion_tokens":7,"total_tokens":507}}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	b.Cleanup(up.Close)
	body, _ := json.Marshal(map[string]any{
		"model": "gpt-4o", "temperature": 0.2,
		"messages": []map[string]string{
			{"role": "system", "content": "You are a helpful assistant."},
			{"role": "user", "content": strings.Repeat("Tell me about reverse proxies. ", 60)},
		},
	})
	gw, _ := newGateway(b, newProxy(b, Config{}), dep("a", up.URL))

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	call := func(b *testing.B, url string) {
		res, err := client.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || n != int64(len(answer)) {
			b.Fatalf("status %d, %d bytes", res.StatusCode, n)
		}
	}
	for _, target := range []struct{ name, url string }{{"direct", up.URL}, {"serve", gw.URL}} {
		b.Run(target.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				call(b, target.url)
			}
		})
		b.Run(target.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					call(b, target.url)
				}
			})
		})
	}
}
