package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/proxy"
)

// echoResolver resolves every name to a model group of that name and
// remembers the last name it was asked for.
type echoResolver struct{ last string }

func (r *echoResolver) Resolve(name string, _, _ map[string]string) gateway.Resolution {
	r.last = name
	return gateway.Resolution{Requested: name, Found: true, Names: []string{name}, Resolved: name,
		Deployments: []gateway.Deployment{{ID: "0", ModelName: name, ProviderModel: "mock/" + name, Provider: "mock"}}}
}

func (r *echoResolver) Candidates(_, _ map[string]string) *gateway.CandidateList {
	return &gateway.CandidateList{}
}

// allowAll is a policy that permits everything.
type allowAll struct{}

func (allowAll) Decide(context.Context, *gateway.Input) (gateway.Decision, error) {
	return gateway.Decision{Allow: true}, nil
}

func (allowAll) VisibleModels(context.Context, *gateway.Input) (map[string]struct{}, error) {
	return map[string]struct{}{}, nil
}

// noKeys knows no key but the master key.
type noKeys struct{}

func (noKeys) PrincipalByKeyHash(context.Context, string) (*gateway.Principal, error) {
	return nil, gateway.ErrNotFound
}

// noUpstream is never reached by GET /v1/models/{model}.
type noUpstream struct{}

func (noUpstream) Serve(http.ResponseWriter, *http.Request, proxy.Request) error {
	return gateway.ErrRouteNotFound
}

// escapeSegments percent-encodes id for a path but keeps its "/" raw, as
// older SDKs send it (":" stays raw too: url.PathEscape keeps it).
func escapeSegments(id string) string {
	segs := strings.Split(id, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// FuzzModelPath routes GET /v1/models/{id} (and /models/{id}) through the
// real router and handler, with the id written raw (slashes and colons as
// they are, as older SDKs send it), with "/" as %2F (openai-go ≥ v3.37),
// and fully escaped: the handler resolves exactly the id encoded and
// answers it as the model's id, never redirects, and never panics. Any
// other path under /v1/models answers 200 or an OpenAI-shaped 4xx.
func FuzzModelPath(f *testing.F) {
	for _, s := range []string{
		"gpt-4o", "openrouter/qwen/qwen3.5-flash-02-23", "a%2Fb", "ft:gpt-4o:org:custom:id",
		"a//b", "/lead", "trail/", "./..", "a b", "é/ü", "a?b#c", "100%", "%", "a%252Fb", "*",
	} {
		f.Add(s)
	}
	const master = "sk-master-fuzz"
	res := &echoResolver{}
	s, err := New(Config{Resolver: res, Authorizer: allowAll{}, Store: noKeys{}, Upstream: noUpstream{}, MasterKey: gateway.Secret(master)})
	if err != nil {
		f.Fatal(err)
	}
	get := func(t *testing.T, path string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "http://gateway.test/", nil)
		// Set the path as it came on the wire: httptest.NewRequest would
		// reject some of what a fuzzer writes.
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return nil
		}
		r.URL = u
		r.RequestURI = path
		r.Header.Set("Authorization", "Bearer "+master)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code >= 300 && w.Code < 400 || w.Code >= 500 {
			t.Fatalf("GET %s = %d, want 200 or a 4xx", path, w.Code)
		}
		return w
	}
	f.Fuzz(func(t *testing.T, id string) {
		// Whatever the fuzzer writes as a path.
		get(t, "/v1/models/"+id)
		if id == "" || !utf8.ValidString(id) {
			return
		}
		forms := []string{
			escapeSegments(id), // raw "/" and ":"
			url.PathEscape(id), // "/" as %2F, raw ":"
			strings.ReplaceAll(url.PathEscape(id), ":", "%3A"),
		}
		for _, prefix := range []string{"/v1/models/", "/models/"} {
			for _, form := range forms {
				path := prefix + form
				res.last = "\x00unset"
				w := get(t, path)
				if w == nil {
					t.Fatalf("path %q for id %q does not parse", path, id)
				}
				var m struct {
					ID string `json:"id"`
				}
				if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &m) != nil {
					t.Fatalf("GET %s (id %q) = %d %s, want 200", path, id, w.Code, w.Body)
				}
				if res.last != id || m.ID != id {
					t.Fatalf("GET %s: resolved %q, answered id %q; want %q", path, res.last, m.ID, id)
				}
			}
		}
	})
}
