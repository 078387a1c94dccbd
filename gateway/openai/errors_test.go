package openai

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
)

func TestWriteError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   ErrorBody
		want   string
	}{
		{
			"nulls", 404,
			ErrorBody{Message: "The model `x` does not exist or you do not have access to it.", Type: TypeInvalidRequest},
			`{"error":{"message":"The model ` + "`x`" + ` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":null}}` + "\n",
		},
		{
			"strings", 400,
			ErrorBody{Message: "bad", Type: TypeInvalidRequest, Param: String("model"), Code: String("400")},
			`{"error":{"message":"bad","type":"invalid_request_error","param":"model","code":"400"}}` + "\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Length", "999")
			WriteError(rec, tc.status, tc.body)
			if rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if cl := rec.Header().Get("Content-Length"); cl != "" {
				t.Errorf("Content-Length = %q, want it removed", cl)
			}
			if got := rec.Body.String(); got != tc.want {
				t.Errorf("body = %s, want %s", got, tc.want)
			}
			if !IsEnvelope(rec.Body.Bytes()) {
				t.Errorf("IsEnvelope(%s) = false, want true", rec.Body.Bytes())
			}
		})
	}
}

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantOK     bool
		wantStrict bool
		want       ErrorBody
	}{
		{"openai shape", `{"error":{"message":"m","type":"t","param":null,"code":"c"}}`, true, true,
			ErrorBody{Message: "m", Type: "t", Code: String("c")}},
		{"absent param and code", `{"error":{"message":"m","type":"t"},"extra":1}`, true, true,
			ErrorBody{Message: "m", Type: "t"}},
		{"numeric code", `{"error":{"message":"m","type":"t","code":429}}`, true, false,
			ErrorBody{Message: "m", Type: "t", Code: String("429")}},
		{"missing type", `{"error":{"message":"m","code":"c"}}`, true, false,
			ErrorBody{Message: "m", Code: String("c")}},
		{"object param", `{"error":{"message":"m","type":"t","param":{"a":1}}}`, true, false,
			ErrorBody{Message: "m", Type: "t"}},
		{"message not a string", `{"error":{"message":1,"type":"t"}}`, false, false, ErrorBody{}},
		{"no message", `{"error":{"type":"t"}}`, false, false, ErrorBody{}},
		{"error is a string", `{"error":"boom"}`, false, false, ErrorBody{}},
		{"error null", `{"error":null}`, false, false, ErrorBody{}},
		{"no error", `{"detail":"boom"}`, false, false, ErrorBody{}},
		{"not json", `<html>502 Bad Gateway</html>`, false, false, ErrorBody{}},
		{"array", `[{"error":{"message":"m"}}]`, false, false, ErrorBody{}},
		{"case variant key", `{"Error":{"message":"m","type":"t"}}`, false, false, ErrorBody{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, strict, ok := ParseEnvelope([]byte(tc.body))
			if ok != tc.wantOK || strict != tc.wantStrict {
				t.Fatalf("ParseEnvelope(%s) ok, strict = %v, %v, want %v, %v", tc.body, ok, strict, tc.wantOK, tc.wantStrict)
			}
			if IsEnvelope([]byte(tc.body)) != tc.wantOK {
				t.Errorf("IsEnvelope(%s) = %v, want %v", tc.body, !tc.wantOK, tc.wantOK)
			}
			if !ok {
				return
			}
			if g, w := MarshalEnvelope(got), MarshalEnvelope(tc.want); !bytes.Equal(g, w) {
				t.Errorf("ParseEnvelope(%s) = %s, want %s", tc.body, g, w)
			}
		})
	}
}

func TestWriteSSEError(t *testing.T) {
	var buf bytes.Buffer
	err := WriteSSEError(&buf, ErrorBody{Message: "upstream stream failed", Type: TypeServer, Code: String("upstream_error")})
	if err != nil {
		t.Fatalf("WriteSSEError() error = %v", err)
	}
	want := `data: {"error":{"message":"upstream stream failed","type":"server_error","param":null,"code":"upstream_error"}}` + "\n\n"
	if got := buf.String(); got != want {
		t.Errorf("WriteSSEError() wrote %q, want %q", got, want)
	}
}

func TestModelListJSON(t *testing.T) {
	list := ModelList{Object: "list", Data: []Model{{ID: "a/b", Object: "model", Created: 7, OwnedBy: "openai"}}}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"object":"list","data":[{"id":"a/b","object":"model","created":7,"owned_by":"openai"}]}`
	if string(b) != want {
		t.Errorf("json.Marshal(ModelList) = %s, want %s", b, want)
	}
}
