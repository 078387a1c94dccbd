package admin

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/regate/gateway/gateway"
)

// badRequest returns the 400 error for param with a client-safe message.
func badRequest(param, format string, args ...any) error {
	return &gateway.BadRequestError{Param: param, Message: fmt.Sprintf(format, args...)}
}

// decodeBody reads one JSON object from the request body into v. Unknown
// fields are accepted (LiteLLM clients send many we do not use); malformed
// JSON, a body that is not an object, a field of the wrong type or trailing
// data is a *gateway.BadRequestError.
func decodeBody(r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody {
		return badRequest("", "The request body must be a JSON object.")
	}
	dec := json.NewDecoder(r.Body)
	// Decoded as a raw value first: decoding null into v would succeed
	// and leave v as it was, as if the body were {}.
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return jsonError(err, reflect.TypeOf(v))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) {
			return err
		}
		return badRequest("", "The request body must hold exactly one JSON object.")
	}
	if raw[0] != '{' {
		return badRequest("", "The request body must be a JSON object.")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return jsonError(err, reflect.TypeOf(v))
	}
	return nil
}

// jsonError turns a decoding error into a 400 naming the offending field.
// target is the type decoded into, used to describe what a field wants.
// Errors reading the body (too large, client gone) pass through.
func jsonError(err error, target reflect.Type) error {
	var (
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		maxBytes *http.MaxBytesError
	)
	switch {
	case errors.As(err, &maxBytes):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("", "The request body must be a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "The request body is not valid JSON: unexpected end of input.")
	case errors.As(err, &syntax):
		return badRequest("", "The request body is not valid JSON: %s.", syntax.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("", "The request body must be a JSON object.")
		}
		field, _, _ := strings.Cut(typ.Field, ".")
		want := typ.Type
		if ft, ok := fieldType(target, field); ok {
			want = ft
		}
		return badRequest(field, "Invalid type for %q: want %s, got %s.", field, describeType(want), typ.Value)
	default:
		return fmt.Errorf("read request body: %w", err)
	}
}

// fieldType returns the type of the field of struct type t (or a pointer to
// one) whose JSON name is name.
func fieldType(t reflect.Type, name string) (reflect.Type, bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name {
			return f.Type, true
		}
	}
	return nil, false
}

// describeType names a Go type the way a JSON client thinks of it.
func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	case reflect.Map:
		return "an object of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	case reflect.Struct:
		return "an object"
	default:
		return "a JSON value"
	}
}

// parseMetadata decodes a metadata field: absent or null gives ok false;
// anything but a JSON object is a 400. Numbers keep their exact text.
func parseMetadata(raw json.RawMessage) (md map[string]any, ok bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, false, nil
	}
	if raw[0] != '{' {
		return nil, false, badRequest("metadata", "Invalid metadata: want a JSON object, got %s.", jsonKind(raw))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&md); err != nil {
		return nil, false, badRequest("metadata", "Invalid metadata: want a JSON object.")
	}
	if md == nil {
		md = map[string]any{}
	}
	if !finiteNumbers(md) {
		return nil, false, badRequest("metadata", "Invalid metadata: a number is out of range.")
	}
	return md, true, nil
}

// finiteNumbers reports whether every number in a decoded JSON value fits
// a float64: stores and the policy read metadata back as JSON, where 1e400
// would fail every later read of the record.
func finiteNumbers(v any) bool {
	switch v := v.(type) {
	case json.Number:
		_, err := strconv.ParseFloat(string(v), 64)
		return err == nil
	case map[string]any:
		for _, e := range v {
			if !finiteNumbers(e) {
				return false
			}
		}
	case []any:
		for _, e := range v {
			if !finiteNumbers(e) {
				return false
			}
		}
	}
	return true
}

// jsonKind names the kind of a JSON value from its first byte.
func jsonKind(raw []byte) string {
	switch raw[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

// maxDuration bounds key lifetimes so expiry arithmetic cannot overflow.
const maxDuration = 100 * 365 * 24 * time.Hour

// parseDuration parses a key duration (DESIGN §10.15): a number and a unit,
// "30s", "10m", "1h", "30d"; also anything time.ParseDuration accepts. The
// duration must be positive. LiteLLM's "-1" means "never expires" and gives
// zero with never true.
func parseDuration(s string) (d time.Duration, never bool, err error) {
	if s == "-1" {
		return 0, true, nil
	}
	if d, perr := gateway.ParseDuration(s); perr == nil && d > 0 && d <= maxDuration {
		return d, false, nil
	}
	return 0, false, badRequest("duration", "Invalid duration %q: want a positive number and a unit (s, m, h, d), such as 30s, 10m, 1h or 30d, or -1 for no expiry.", s)
}

// expiry returns the expiry time for an optional duration; a nil or empty
// duration or "-1" means the key never expires (the zero time).
func (a *API) expiry(duration *string) (time.Time, error) {
	if duration == nil || *duration == "" {
		return time.Time{}, nil
	}
	d, never, err := parseDuration(*duration)
	if err != nil || never {
		return time.Time{}, err
	}
	return a.now().Add(d).UTC(), nil
}

// queryInt reads an optional positive integer query parameter.
func queryInt(q url.Values, name string, def, max int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, badRequest(name, "Invalid %s %q: want an integer from 1 to %d.", name, s, max)
	}
	return n, nil
}

// queryBool reads an optional boolean query parameter.
func queryBool(q url.Values, name string) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest(name, "Invalid %s %q: want true or false.", name, s)
	}
	return b, nil
}

// keyAlphabet is the alphabet of generated keys: base62.
const keyAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// keyLength is the number of random characters after "sk-" (about 190 bits).
const keyLength = 32

// newKey returns a fresh plaintext virtual key "sk-" + 32 base62 characters.
func (a *API) newKey() (string, error) {
	out := make([]byte, 0, 3+keyLength)
	out = append(out, "sk-"...)
	buf := make([]byte, 64)
	for len(out) < cap(out) {
		if _, err := io.ReadFull(a.rand, buf); err != nil {
			return "", fmt.Errorf("generate key: %w", err)
		}
		for _, b := range buf {
			// 248 = 4*62: rejecting the rest keeps the choice uniform.
			if b < 248 && len(out) < cap(out) {
				out = append(out, keyAlphabet[b%62])
			}
		}
	}
	return string(out), nil
}

// newID returns a random UUID (version 4) for generated team and user ids.
func (a *API) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(a.rand, b[:]); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// isKeyHash reports whether s has the form of a stored key hash: 64
// lowercase hex digits.
func isKeyHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// keyLabel names a key given by a client in messages without revealing it:
// the redacted form of a plaintext key, or the last 4 digits of a hash.
func keyLabel(s string) string {
	if isKeyHash(s) {
		return "token ..." + s[len(s)-4:]
	}
	return gateway.Redact(s)
}

// minCustomKey is the shortest plaintext key /key/generate accepts from a
// client ("sk-" and at least 8 more characters).
const minCustomKey = 11
