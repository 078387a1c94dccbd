package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/regate/gateway/gateway"
)

// topLevelKeys returns the decoded top-level keys of a JSON object in
// order, and ok false when body is not one valid JSON object. It is the
// duplicate-key detector of the fuzz targets: encoding/json itself keeps
// the last of two equal keys without a word.
func topLevelKeys(body []byte) (keys []string, ok bool) {
	if !json.Valid(body) {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(body))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, false
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return nil, false
		}
	}
	return keys, true
}

// hasDuplicate reports whether keys holds a key twice.
func hasDuplicate(keys []string) bool {
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k] {
			return true
		}
		seen[k] = true
	}
	return false
}

// caseAmbiguous reports whether a key differs from "model", "stream" or
// "stream_options" only by case, as Go's encoding/json would still match it.
func caseAmbiguous(keys []string) bool {
	for _, k := range keys {
		for _, name := range []string{"model", "stream", "stream_options"} {
			if k != name && strings.EqualFold(k, name) {
				return true
			}
		}
	}
	return false
}

// refFields is what an upstream that decodes with encoding/json reads of
// the fields ScanJSON reads: matched as encoding/json matches them (case
// folded), the last of equal keys winning.
type refFields struct {
	Model         json.RawMessage `json:"model"`
	Stream        json.RawMessage `json:"stream"`
	StreamOptions json.RawMessage `json:"stream_options"`
}

// FuzzScanJSON checks ScanJSON against encoding/json. It never panics;
// whatever it accepts is one valid JSON object whose model, stream and
// stream_options.include_usage are what encoding/json reads, and whose
// members Members lists in order; every valid object without duplicate or
// case-ambiguous top-level keys and with a string model of valid UTF-8 is
// accepted; every object with a duplicate top-level key (after unescaping)
// is refused with a *gateway.BadRequestError.
func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"a","model":"b"}`, `{"a":[1,2,{"b":null}],"model":"\u00e9"}`, `{}`, `[]`, `1`,
		`{"n":-0.5e+10}`, `{"s":"\ud83d\ude00"}`, `{"model":1}`, ` {"x":"\\"} `, `{"Model":"x"}`,
		`{"model":"a","mod\u0065l":"b"}`, `{"stream":true,"stream":false}`, `{"\u017ftream":true}`,
		`{"model":"openrouter/qwen/qwen3.5-flash","stream":true,"stream_options":{"include_usage":true}}`,
		`{"stream_options":{"include_usage":false,"include_usage":true}}`, `{"stream_options":null}`,
		`{"a":{"b":1,"b":2},"model":"m"}`, `{"model":"\ud800"}`, "{\"model\":\"a\xffb\"}",
		`{"model":"a"} {}`, `{"model":"a",}`, `{"model" : "x" , "stream" : true }`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fields, err := ScanJSON(body)
		keys, isObject := topLevelKeys(body)
		if err != nil {
			var bad *gateway.BadRequestError
			if !errors.As(err, &bad) {
				t.Fatalf("ScanJSON(%q) error %T, want *gateway.BadRequestError", body, err)
			}
			if !isObject || hasDuplicate(keys) || caseAmbiguous(keys) {
				return
			}
			// A valid object refused: only for its model, or for an
			// include_usage key in stream_options that differs only by case.
			if bad.Param == "stream_options.include_usage" {
				var ref refFields
				var opts map[string]json.RawMessage
				if json.Unmarshal(body, &ref) == nil && json.Unmarshal(ref.StreamOptions, &opts) == nil {
					for k := range opts {
						if k != "include_usage" && strings.EqualFold(k, "include_usage") {
							return
						}
					}
				}
				t.Fatalf("ScanJSON(%q) refused stream_options %s without a case-folded include_usage: %v", body, ref.StreamOptions, err)
			}
			if bad.Param != "model" {
				t.Fatalf("ScanJSON(%q) refused a valid object without duplicate keys: %v", body, err)
			}
			var ref refFields
			var m string
			if json.Unmarshal(body, &ref) == nil && json.Unmarshal(ref.Model, &m) == nil &&
				utf8.Valid(ref.Model) && !strings.Contains(string(ref.Model), `\ud`) && !strings.Contains(string(ref.Model), `\uD`) {
				t.Fatalf("ScanJSON(%q) refused the string model %s: %v", body, ref.Model, err)
			}
			return
		}
		if !isObject {
			t.Fatalf("ScanJSON(%q) accepted something that is not one JSON object", body)
		}
		if hasDuplicate(keys) {
			t.Fatalf("ScanJSON(%q) accepted duplicate top-level keys %q", body, keys)
		}
		var ref refFields
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("json.Unmarshal(%q) error = %v", body, err)
		}
		if has := ref.Model != nil; has != fields.HasModel {
			t.Fatalf("ScanJSON(%q).HasModel = %t, encoding/json finds a model: %t", body, fields.HasModel, has)
		}
		if fields.HasModel {
			var m string
			if err := json.Unmarshal(ref.Model, &m); err != nil || m != fields.Model {
				t.Fatalf("ScanJSON(%q).Model = %q, encoding/json reads %q (%v)", body, fields.Model, m, err)
			}
		}
		if want := string(ref.Stream) == "true"; fields.Stream != want {
			t.Fatalf("ScanJSON(%q).Stream = %t, encoding/json reads %s", body, fields.Stream, ref.Stream)
		}
		var opts struct {
			IncludeUsage json.RawMessage `json:"include_usage"`
		}
		wantUsage := len(ref.StreamOptions) > 0 && ref.StreamOptions[0] == '{' &&
			json.Unmarshal(ref.StreamOptions, &opts) == nil && string(opts.IncludeUsage) == "true"
		if fields.IncludeUsage != wantUsage {
			t.Fatalf("ScanJSON(%q).IncludeUsage = %t, encoding/json reads stream_options %s", body, fields.IncludeUsage, ref.StreamOptions)
		}

		ms, err := Members(body)
		if err != nil || len(ms) != len(keys) {
			t.Fatalf("Members(%q) = %d members, %v; want %d", body, len(ms), err, len(keys))
		}
		for i, m := range ms {
			if m.Key != keys[i] || !json.Valid(m.Raw) {
				t.Fatalf("Members(%q)[%d] = %q: %s, want key %q and a valid value", body, i, m.Key, m.Raw, keys[i])
			}
		}

		out := ReplaceModel(body, fields, "replaced/model")
		var again map[string]json.RawMessage
		if err := json.Unmarshal(out, &again); err != nil || string(again["model"]) != `"replaced/model"` || len(again) != len(keys)+boolInt(!fields.HasModel) {
			t.Fatalf("ReplaceModel(%q) = %q, not the same object with the new model", body, out)
		}
		if f2, err := ScanJSON(out); err != nil || f2.Model != "replaced/model" || f2.Stream != fields.Stream {
			t.Fatalf("ScanJSON(ReplaceModel(%q)) = %+v, %v", body, f2, err)
		}
		withUsage := WithIncludeUsage(body, fields)
		if f3, err := ScanJSON(withUsage); err != nil || !f3.IncludeUsage || f3.Model != fields.Model || f3.Stream != fields.Stream {
			t.Fatalf("ScanJSON(WithIncludeUsage(%q) = %q) = %+v, %v", body, withUsage, f3, err)
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// multipartModels reads body with mime/multipart, as an upstream written
// in Go would: the values of its "model" form fields. ok is false when
// the reader fails.
func multipartModels(body []byte, boundary string) (models []string, ok bool) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return models, true
		}
		if err != nil {
			return nil, false
		}
		v, err := io.ReadAll(part)
		if err != nil {
			return nil, false
		}
		if part.FormName() == "model" {
			models = append(models, string(v))
		}
	}
}

// FuzzScanMultipart checks ScanMultipart against mime/multipart. It never
// panics and only refuses with a *gateway.BadRequestError; a body it
// accepts is one mime/multipart reads with at most one model field, of the
// same value. A form written by multipart.Writer whose values hold no
// boundary line is accepted with the model written, and
// ReplaceMultipartModel changes only that model.
func FuzzScanMultipart(f *testing.F) {
	crlf := func(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }
	f.Add(crlf("--X\nContent-Disposition: form-data; name=\"model\"\n\nwhisper-1\n--X\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\n\nRIFF\n--X--\n"), "X", "whisper-1", "RIFF")
	f.Add(crlf("preamble\n--X\nContent-Disposition: form-data; name=\"model\"\n\na/b\n--X\nContent-Disposition: form-data; name=\"model\"\n\nc\n--X--"), "X", "a/b", "")
	f.Add([]byte("--X\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\na\n--X\r\n\r\n\r\n--X--"), "X", "", "\n--X")
	f.Add(crlf("--b \t\nContent-Disposition: form-data; name=model\nContent-Transfer-Encoding: quoted-printable\n\na=3Db\n--b--"), "b", "m\xff", "x\r\n--b")
	f.Add(crlf("--b\nContent-Disposition: form-data; name=\"other\"\n\n--b\n--b--"), "b", "", "")
	f.Fuzz(func(t *testing.T, body []byte, boundary, model, other string) {
		// The fuzzer only stalls on an input that never ends: report it.
		stop := time.AfterFunc(20*time.Second, func() {
			panic(fmt.Sprintf("FuzzScanMultipart(%q, %q, %q, %q) has not ended after 20s", body, boundary, model, other))
		})
		defer stop.Stop()
		ct := mime.FormatMediaType("multipart/form-data", map[string]string{"boundary": boundary})
		if ct == "" {
			ct = "multipart/form-data; boundary=" + boundary
		}
		got, err := ScanMultipart(body, ct)
		if err != nil {
			var bad *gateway.BadRequestError
			if !errors.As(err, &bad) {
				t.Fatalf("ScanMultipart(%q, %q) error %T, want *gateway.BadRequestError", body, ct, err)
			}
		} else {
			_, params, perr := mime.ParseMediaType(ct)
			if perr != nil {
				t.Fatalf("ScanMultipart accepted Content-Type %q that mime cannot parse: %v", ct, perr)
			}
			models, ok := multipartModels(body, params["boundary"])
			if !ok || len(models) > 1 || (len(models) == 1) != (got != "" || hasModelPart(t, body, ct)) ||
				(len(models) == 1 && models[0] != got) {
				t.Fatalf("ScanMultipart(%q, %q) = %q; mime/multipart reads models %q (ok %t)", body, ct, got, models, ok)
			}
			if !strings.ContainsAny(other, "\r\n") && !strings.HasPrefix(other, "--"+params["boundary"]) {
				out, err := ReplaceMultipartModel(body, ct, other)
				if err != nil {
					t.Fatalf("ReplaceMultipartModel(%q, %q, %q) error = %v", body, ct, other, err)
				}
				models, ok := multipartModels(out, params["boundary"])
				if !ok || len(models) != 1 || models[0] != other {
					t.Fatalf("ReplaceMultipartModel(%q, %q, %q) = %q; mime/multipart reads models %q (ok %t)", body, ct, other, out, models, ok)
				}
			}
		}

		// A well-formed form as an SDK writes it.
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		if w.SetBoundary(boundary) != nil {
			return
		}
		if err := w.WriteField("other", other); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteField("model", model); err != nil {
			t.Fatal(err)
		}
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", `form-data; name="file"; filename="a.bin"`)
		fw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(body)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		form := buf.Bytes()
		got, err = ScanMultipart(form, w.FormDataContentType())
		dashed := "--" + boundary
		clean := !strings.Contains(other, dashed) && !strings.Contains(model, dashed) && !bytes.Contains(body, []byte(dashed))
		switch {
		case err == nil && got != model:
			t.Fatalf("ScanMultipart(%q) = %q, want %q", form, got, model)
		case err != nil && clean && utf8.ValidString(model):
			t.Fatalf("ScanMultipart(%q) error = %v, want %q", form, err, model)
		}
	})
}

// hasModelPart reports whether body, which ScanMultipart accepted, has a
// model part (perhaps empty).
func hasModelPart(tb testing.TB, body []byte, ct string) bool {
	tb.Helper()
	mp, err := splitMultipart(body, ct)
	if err != nil {
		tb.Fatalf("splitMultipart after ScanMultipart accepted: %v", err)
	}
	i, _ := mp.modelPart()
	return i >= 0
}
