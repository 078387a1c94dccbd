package openai

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/regate/gateway/gateway"
)

// maxDepth bounds nesting like encoding/json does.
const maxDepth = 10000

// dupMapThreshold is the number of top-level keys after which duplicate
// detection switches from a linear scan to a map.
const dupMapThreshold = 32

// RequestFields are the top-level fields of a JSON request body the gateway
// reads, with the position of the model value so that ReplaceModel can
// rewrite it without touching any other byte.
type RequestFields struct {
	// Model is the decoded value of the top-level "model" string.
	Model string
	// HasModel reports whether the body has a top-level "model" key.
	HasModel bool
	// Stream is the top-level "stream" when it is a boolean, false otherwise.
	Stream bool
	// IncludeUsage is true when the body asks for usage in its stream:
	// "stream_options": {"include_usage": true}.
	IncludeUsage bool

	// objStart is the offset of the opening brace; hasMembers whether the
	// object has at least one member. Used to insert a missing model.
	objStart   int
	hasMembers bool
	// modelStart and modelEnd delimit the model value token, quotes
	// included: body[modelStart:modelEnd].
	modelStart, modelEnd int
	// optStart and optEnd delimit the stream_options value; optEnd is 0
	// when there is none.
	optStart, optEnd int
	// scanned marks a value produced by ScanJSON.
	scanned bool
}

// parseMessage is the message of every malformed-JSON error.
const parseMessage = "We could not parse the JSON body of your request."

func parseError(format string, args ...any) error {
	return &gateway.BadRequestError{Message: parseMessage + " (" + fmt.Sprintf(format, args...) + ")"}
}

// ScanJSON reads the fields the gateway needs from a request body. The body
// must be exactly one valid JSON object (surrounding whitespace allowed).
// Top-level keys must be unique after unescaping (and replacing invalid
// UTF-8 with U+FFFD, as encoding/json does), and no key may differ from
// "model", "stream" or "stream_options" (nor, inside stream_options, from
// "include_usage") only by case: an upstream that matches keys
// case-insensitively (Go's encoding/json does) would otherwise read a model
// the gateway never checked, or a stream whose usage it never sees. "model",
// when present, must be a string of valid UTF-8. "stream" is read when it is
// a boolean. All errors are *gateway.BadRequestError.
func ScanJSON(body []byte) (RequestFields, error) {
	s := scanner{b: body}
	var f RequestFields
	s.skipWS()
	if s.i >= len(s.b) {
		return f, parseError("the body is empty")
	}
	if s.b[s.i] != '{' {
		return f, &gateway.BadRequestError{Message: parseMessage + " (the body must be a JSON object)"}
	}
	f.objStart = s.i
	s.i++
	var backing [16][]byte
	seen := keySet{list: backing[:0]}
	s.skipWS()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
	} else {
		f.hasMembers = true
		for {
			if s.i >= len(s.b) || s.b[s.i] != '"' {
				return f, s.errUnexpected("a string key")
			}
			keyStart := s.i
			escaped, err := s.scanString()
			if err != nil {
				return f, err
			}
			key := decodeKey(s.b[keyStart+1:s.i-1], escaped)
			if err := checkKey(&seen, key); err != nil {
				return f, err
			}
			s.skipWS()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return f, s.errUnexpected("':'")
			}
			s.i++
			s.skipWS()
			valStart := s.i
			kind, err := s.scanValue(1)
			if err != nil {
				return f, err
			}
			switch string(key) {
			case "model":
				if kind != kindString {
					return f, &gateway.BadRequestError{Param: "model", Message: "The model parameter must be a string."}
				}
				m, err := decodeModel(s.b[valStart+1 : s.i-1])
				if err != nil {
					return f, err
				}
				f.Model, f.HasModel = m, true
				f.modelStart, f.modelEnd = valStart, s.i
			case "stream":
				f.Stream = kind == kindTrue
			case "stream_options":
				f.optStart, f.optEnd = valStart, s.i
				if kind == kindObject {
					if f.IncludeUsage, err = includesUsage(s.b[valStart:s.i]); err != nil {
						return f, err
					}
				}
			}
			s.skipWS()
			if s.i >= len(s.b) {
				return f, s.errUnexpected("',' or '}'")
			}
			if s.b[s.i] == '}' {
				s.i++
				break
			}
			if s.b[s.i] != ',' {
				return f, s.errUnexpected("',' or '}'")
			}
			s.i++
			s.skipWS()
		}
	}
	s.skipWS()
	if s.i != len(s.b) {
		return f, parseError("unexpected data after the top-level object at offset %d", s.i)
	}
	f.scanned = true
	return f, nil
}

// decodeKey decodes a member name (without quotes) as encoding/json does:
// escapes resolved when escaped is set, and each byte that is not valid
// UTF-8 replaced by U+FFFD. Two names that an upstream decodes to the same
// key are then the same key here too.
func decodeKey(raw []byte, escaped bool) []byte {
	key := raw
	if escaped {
		dec, _ := unquote(raw)
		key = []byte(dec)
	}
	if utf8.Valid(key) {
		return key
	}
	out := make([]byte, 0, len(key)+8)
	for i := 0; i < len(key); {
		r, size := utf8.DecodeRune(key[i:])
		out = utf8.AppendRune(out, r) // RuneError for a bad byte
		i += size
	}
	return out
}

// keySet detects duplicate top-level keys: a slice for the usual handful of
// keys, a map when a body has many.
type keySet struct {
	list [][]byte
	m    map[string]struct{}
}

// add reports whether k was new.
func (ks *keySet) add(k []byte) bool {
	if ks.m != nil {
		if _, dup := ks.m[string(k)]; dup {
			return false
		}
		ks.m[string(k)] = struct{}{}
		return true
	}
	for _, e := range ks.list {
		if bytes.Equal(e, k) {
			return false
		}
	}
	ks.list = append(ks.list, k)
	if len(ks.list) > dupMapThreshold {
		ks.m = make(map[string]struct{}, 2*len(ks.list))
		for _, e := range ks.list {
			ks.m[string(e)] = struct{}{}
		}
		ks.list = nil
	}
	return true
}

func checkKey(seen *keySet, key []byte) error {
	if !seen.add(key) {
		return &gateway.BadRequestError{
			Param:   paramFor(key),
			Message: fmt.Sprintf("duplicate key %q in request body", key),
		}
	}
	// Cheap filter before the Unicode-aware comparison: the longest fold
	// is "stream_options" with both s written as U+017F (16 bytes).
	if len(key) >= 5 && len(key) <= 16 {
		for _, name := range [...]string{"model", "stream", "stream_options"} {
			if string(key) != name && strings.EqualFold(string(key), name) {
				return &gateway.BadRequestError{
					Param:   name,
					Message: fmt.Sprintf("key %q in request body differs from %q only by case", key, name),
				}
			}
		}
	}
	return nil
}

func paramFor(key []byte) string {
	if utf8.Valid(key) && len(key) <= 64 {
		return string(key)
	}
	return ""
}

// decodeModel decodes the model value (without quotes). Invalid UTF-8 and
// lone surrogate escapes are refused: the name must mean the same to every
// reader.
func decodeModel(raw []byte) (string, error) {
	bad := &gateway.BadRequestError{Param: "model", Message: "The model parameter must be valid UTF-8."}
	if !utf8.Valid(raw) {
		return "", bad
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw), nil
	}
	m, ok := unquote(raw)
	if !ok {
		return "", bad
	}
	return m, nil
}

// ReplaceModel returns a copy of body whose model value is the JSON encoding
// of model; every other byte is unchanged. f must come from ScanJSON(body).
// When the body has no model, "model" is inserted as the first member. A body
// that f does not describe is re-scanned; if it is not a valid request body,
// an unchanged copy is returned.
func ReplaceModel(body []byte, f RequestFields, model string) []byte {
	if !f.matches(body) {
		var err error
		if f, err = ScanJSON(body); err != nil {
			return bytes.Clone(body)
		}
	}
	enc := appendJSONString(nil, model)
	if f.HasModel {
		out := make([]byte, 0, len(body)-(f.modelEnd-f.modelStart)+len(enc))
		out = append(out, body[:f.modelStart]...)
		out = append(out, enc...)
		return append(out, body[f.modelEnd:]...)
	}
	at := f.objStart + 1
	out := make([]byte, 0, len(body)+len(enc)+10)
	out = append(out, body[:at]...)
	out = append(out, `"model":`...)
	out = append(out, enc...)
	if f.hasMembers {
		out = append(out, ',')
	}
	return append(out, body[at:]...)
}

// matches reports whether f plausibly describes body.
func (f RequestFields) matches(body []byte) bool {
	if !f.scanned || f.objStart >= len(body) || body[f.objStart] != '{' {
		return false
	}
	if !f.HasModel {
		return true
	}
	return f.modelStart < f.modelEnd-1 && f.modelEnd <= len(body) &&
		body[f.modelStart] == '"' && body[f.modelEnd-1] == '"'
}

// appendJSONString appends s as a JSON string. Unlike encoding/json it does
// not escape <, > and &; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// unquote decodes the inside of a JSON string that scanString accepted. ok is
// false when it holds a lone surrogate escape (decoded as U+FFFD).
func unquote(raw []byte) (string, bool) {
	ok := true
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		e := raw[i+1]
		i += 2
		switch e {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(raw[i : i+4])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hex4(raw[i+2 : i+6])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
					ok = false
				}
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, e)
		}
	}
	return string(out), ok
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// Member is one top-level member of a JSON object body.
type Member struct {
	// Key is the decoded member name.
	Key string
	// Raw is the value as written.
	Raw []byte
	// Kind is the value's JSON type: "string", "number", "bool", "null",
	// "object" or "array".
	Kind string
}

// Members returns the top-level members of a JSON object body, in order,
// without decoding the values (DESIGN §6, input.request.params). The body
// must be what ScanJSON accepts.
func Members(body []byte) ([]Member, error) {
	s := scanner{b: body}
	s.skipWS()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, parseError("the body must be a JSON object")
	}
	s.i++
	s.skipWS()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		return nil, nil
	}
	var out []Member
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return nil, s.errUnexpected("a string key")
		}
		keyStart := s.i
		if _, err := s.scanString(); err != nil {
			return nil, err
		}
		key := string(decodeKey(s.b[keyStart+1:s.i-1], true))
		s.skipWS()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return nil, s.errUnexpected("':'")
		}
		s.i++
		s.skipWS()
		valStart := s.i
		kind, err := s.scanValue(1)
		if err != nil {
			return nil, err
		}
		out = append(out, Member{Key: key, Raw: s.b[valStart:s.i], Kind: kindName(kind)})
		s.skipWS()
		if s.i >= len(s.b) {
			return nil, s.errUnexpected("',' or '}'")
		}
		if s.b[s.i] == '}' {
			return out, nil
		}
		if s.b[s.i] != ',' {
			return nil, s.errUnexpected("',' or '}'")
		}
		s.i++
		s.skipWS()
	}
}

func kindName(k valueKind) string {
	switch k {
	case kindString:
		return "string"
	case kindNumber:
		return "number"
	case kindTrue, kindFalse:
		return "bool"
	case kindNull:
		return "null"
	case kindObject:
		return "object"
	}
	return "array"
}
