// Command floorproxy is test tooling: the memory floor of the gateway's
// architecture, which BenchmarkProcessVsBareProxy measures beside the
// gateway and the bare proxy (tests/process_bare_bench_test.go builds it).
// It is the bare proxy (tests/internal/bare) plus the dependencies the
// design names for the job, each linked and started as far as a process
// that uses it must: OPA's rego package with the default bundle compiled and
// evaluated once, gorilla/mux routing every request, the OpenTelemetry SDK's
// tracer provider (the global one) with the OTLP exporters' packages, and
// pgx's pool package. It
// decides no call and holds no key, catalog or configuration, so any
// gateway built on these dependencies holds at least its memory.
//
//	floorproxy -listen 127.0.0.1:8080 -upstream http://127.0.0.1:9090
package main

import (
	"context"
	"io/fs"
	"log"
	"strings"

	"github.com/gorilla/mux"
	_ "github.com/jackc/pgx/v5/pgxpool"
	"github.com/open-policy-agent/opa/v1/rego"
	"go.opentelemetry.io/otel"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/regate/gateway/bundles"
	"github.com/regate/gateway/tests/internal/bare"
)

// input is a chat call the default policy allows: a key whose allow-list
// names the requested model.
var input = map[string]any{
	"request": map[string]any{"id": "req-1", "route": "inference", "operation": "chat.completions",
		"method": "POST", "path": "/v1/chat/completions", "stream": false, "self": false},
	"key": map[string]any{"id": "k", "alias": "", "role": "", "models": []any{"bench-000"}, "aliases": map[string]any{},
		"team_id": nil, "user_id": nil, "metadata": map[string]any{}, "blocked": false, "expires_at": nil, "expired": false},
	"team": nil,
	"user": nil,
	"model": map[string]any{"requested": "bench-000", "found": true,
		"chain":    []any{map[string]any{"name": "bench-000", "kind": "model_group"}},
		"names":    []any{"bench-000"},
		"resolved": "bench-000", "wildcard": nil, "access_groups": []any{}},
	"candidates":      []any{},
	"candidate_index": nil,
	"now":             "2026-12-07T12:00:00Z",
}

func main() {
	listen, rp := bare.FromFlags("floorproxy")
	otel.SetTracerProvider(sdktrace.NewTracerProvider())
	allowed, err := decide()
	if err != nil || !allowed {
		log.Fatalf("floorproxy: the default policy did not allow the call (%v)", err)
	}

	r := mux.NewRouter()
	r.PathPrefix("/").Handler(rp)
	log.Fatal(bare.Server(listen, r).ListenAndServe())
}

// decide compiles the default bundle's policy (its _test.rego files left
// out, as the gateway loads it for serving) and evaluates its decision for
// input once, so that what the compiled policy holds after a first decision
// is resident.
func decide() (bool, error) {
	// The gateway's rego package names this query (DecisionQuery) and
	// reads bundles, but importing it would link the gateway's own code.
	opts := []func(*rego.Rego){rego.Query("data.gateway.authz.decision")}
	err := fs.WalkDir(bundles.Default, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") || strings.HasSuffix(p, "_test.rego") {
			return err
		}
		src, err := fs.ReadFile(bundles.Default, p)
		opts = append(opts, rego.Module(p, string(src)))
		return err
	})
	if err != nil {
		return false, err
	}
	ctx := context.Background()
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return false, err
	}
	rs, err := pq.Eval(ctx, rego.EvalInput(input))
	if err != nil || len(rs) == 0 {
		return false, err
	}
	d, _ := rs[0].Expressions[0].Value.(map[string]any)
	return d["allow"] == true, nil
}
