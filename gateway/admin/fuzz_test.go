package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/store/memory"
)

// refDecode is decodeBody's contract written with encoding/json alone: the
// body is one JSON object (surrounding space allowed) that decodes into v
// without a type error; unknown fields are ignored.
func refDecode(body []byte, v any) bool {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if !json.Valid(body) || len(trimmed) == 0 || trimmed[0] != '{' {
		return false
	}
	return json.Unmarshal(body, v) == nil
}

// clientError reports whether err is one the edge answers with a 4xx:
// anything else becomes a 500.
func clientError(err error) bool {
	var (
		bad      *gateway.BadRequestError
		notFound *gateway.NotFoundError
		conflict *gateway.ConflictError
		denied   *gateway.DeniedError
	)
	return errors.As(err, &bad) || errors.As(err, &notFound) || errors.As(err, &conflict) || errors.As(err, &denied)
}

// FuzzAdminBody sends arbitrary bodies to every admin write endpoint, as
// the admin, over the memory store, the catalog and the default policy.
// Nothing panics; decodeBody accepts exactly the bodies encoding/json
// decodes as one object of the request type, into the same value; a
// refused body is a *gateway.BadRequestError; and every endpoint answers
// a result or an error the edge maps to a 4xx, never a 500.
func FuzzAdminBody(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `[]`, `"x"`, `{"key":"sk-1234567890a","models":["gpt-4o","openai/*"],"duration":"30d"}`,
		`{"models":["gpt-4o"],"models":["claude"]}`, `{"Models":["nowhere"]}`, `{"team_id":"research","key_alias":"a"}`,
		`{"team_id":"research","models":["claude"]}`, `{"aliases":{"a":"b","b":"a"}}`, `{"metadata":{"n":1e400}}`,
		`{"metadata":[1]}`, `{"max_budget":-1,"budget_duration":"NaNd","rpm_limit":1.5}`, `{"duration":"-1"}`,
		`{"model_rpm_limit":{"gpt-4o":10},"model_max_budget":{"x":{"budget_limit":1,"time_period":"1d"}}}`,
		`{"keys":["sk-nope"]}`, `{"team_ids":["research"]}`, `{"user_ids":["alice"]}`, `{"user_id":"alice","user_role":"nope"}`,
		`{"team_id":"t","model_aliases":{"fast":"claude"}}`, `{} {}`, `{"a":1}x`, ` {"key":null} `, "{\"key_alias\":\"\xff\"}",
	} {
		for op := range 12 {
			f.Add(uint8(op), []byte(s))
		}
	}
	fx := newFixture(f)
	var posts []Endpoint
	for _, e := range fx.api.Endpoints() {
		if e.Method == http.MethodPost {
			posts = append(posts, e)
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		if len(body) > 8<<10 {
			return
		}
		req := func() *http.Request {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			return r
		}
		for _, typ := range []reflect.Type{reflect.TypeFor[keyRequest](), reflect.TypeFor[teamRequest](), reflect.TypeFor[userRequest]()} {
			got, want := reflect.New(typ), reflect.New(typ)
			err := decodeBody(req(), got.Interface())
			ok := refDecode(body, want.Interface())
			if (err == nil) != ok {
				t.Fatalf("decodeBody(%q) into %v error = %v; encoding/json decodes it: %t", body, typ, err, ok)
			}
			if err != nil {
				var bad *gateway.BadRequestError
				if !errors.As(err, &bad) {
					t.Fatalf("decodeBody(%q) error %T, want *gateway.BadRequestError", body, err)
				}
				continue
			}
			if !reflect.DeepEqual(got.Interface(), want.Interface()) {
				t.Fatalf("decodeBody(%q) into %v = %+v, encoding/json gives %+v", body, typ, got.Elem(), want.Elem())
			}
		}

		// A fresh store per run: writes must not pile up.
		st := memory.New()
		if err := st.Upsert(t.Context(), []gateway.Team{{ID: "research", Models: []string{"gpt-4o", "fast"}, CreatedAt: testNow}},
			[]gateway.User{{ID: "alice", Role: gateway.RoleInternalUser, CreatedAt: testNow}}, nil); err != nil {
			t.Fatal(err)
		}
		api, err := New(Config{Store: st, Catalog: fx.cat, Authorizer: fx.authz, Now: fx.api.now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := api.keyGenerate(t.Context(), fx.admin, request(t, http.MethodPost, "/key/generate", `{"key":"sk-existing-key","team_id":"research"}`)); err != nil {
			t.Fatal(err)
		}
		e := posts[int(op)%len(posts)]
		for _, ep := range api.Endpoints() {
			if ep.Method == e.Method && ep.Path == e.Path {
				e = ep
			}
		}
		res, err := e.Handle(t.Context(), fx.admin, req())
		if err != nil && !clientError(err) {
			t.Fatalf("%s %q: error %T %v, which the edge answers with a 500", e.Path, body, err, err)
		}
		if err == nil {
			if _, err := json.Marshal(res); err != nil {
				t.Fatalf("%s %q: result does not marshal: %v", e.Path, body, err)
			}
		}
	})
}
