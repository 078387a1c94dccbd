package openai

import "fmt"

// valueKind is the type of a scanned JSON value.
type valueKind uint8

const (
	kindString valueKind = iota + 1
	kindNumber
	kindTrue
	kindFalse
	kindNull
	kindObject
	kindArray
)

// scanner is a validating JSON scanner over a byte slice. It accepts exactly
// what encoding/json accepts (RFC 8259; invalid UTF-8 inside strings is
// tolerated as encoding/json tolerates it) and never allocates.
type scanner struct {
	b []byte
	i int
}

// strPlain marks bytes that may appear in a string without ending it or
// starting an escape.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = true
	}
	t['"'] = false
	t['\\'] = false
	return t
}()

func (s *scanner) skipWS() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) errUnexpected(want string) error {
	if s.i >= len(s.b) {
		return parseError("unexpected end of body, expected %s", want)
	}
	return parseError("unexpected %s at offset %d, expected %s", describe(s.b[s.i]), s.i, want)
}

func describe(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("character %q", c)
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// scanString scans a string starting at the opening quote and leaves s.i after
// the closing quote. It reports whether the string has escapes.
func (s *scanner) scanString() (escaped bool, err error) {
	b := s.b
	i := s.i + 1
	for {
		// Hot loop: most of a chat body is string content.
		for i+8 <= len(b) && strPlain[b[i]] && strPlain[b[i+1]] && strPlain[b[i+2]] && strPlain[b[i+3]] &&
			strPlain[b[i+4]] && strPlain[b[i+5]] && strPlain[b[i+6]] && strPlain[b[i+7]] {
			i += 8
		}
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			s.i = i
			return escaped, parseError("unterminated string")
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				s.i = i
				return escaped, parseError("unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					s.i = i
					return escaped, parseError("invalid \\u escape at offset %d", i)
				}
				i += 6
			default:
				s.i = i
				return escaped, parseError("invalid escape at offset %d", i)
			}
		default:
			s.i = i
			return escaped, parseError("control character in string at offset %d", i)
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanValue scans one value at s.i (whitespace already skipped).
func (s *scanner) scanValue(depth int) (valueKind, error) {
	if s.i >= len(s.b) {
		return 0, s.errUnexpected("a value")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, err := s.scanString()
		return kindString, err
	case c == '{':
		return kindObject, s.scanObject(depth + 1)
	case c == '[':
		return kindArray, s.scanArray(depth + 1)
	case c == 't':
		return kindTrue, s.literal("true")
	case c == 'f':
		return kindFalse, s.literal("false")
	case c == 'n':
		return kindNull, s.literal("null")
	case c == '-' || isDigit(c):
		return kindNumber, s.scanNumber()
	default:
		return 0, s.errUnexpected("a value")
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.errUnexpected("a value")
	}
	s.i += len(lit)
	return nil
}

// scanNumber follows RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) scanNumber() error {
	b, i := s.b, s.i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		s.i = i
		return s.errUnexpected("a digit")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			s.i = i
			return s.errUnexpected("a digit")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			s.i = i
			return s.errUnexpected("a digit")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.i = i
	return nil
}

func (s *scanner) scanObject(depth int) error {
	if depth > maxDepth {
		return parseError("nesting deeper than %d", maxDepth)
	}
	s.i++ // '{'
	s.skipWS()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.errUnexpected("a string key")
		}
		if _, err := s.scanString(); err != nil {
			return err
		}
		s.skipWS()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.errUnexpected("':'")
		}
		s.i++
		s.skipWS()
		if _, err := s.scanValue(depth); err != nil {
			return err
		}
		s.skipWS()
		if s.i >= len(s.b) {
			return s.errUnexpected("',' or '}'")
		}
		switch s.b[s.i] {
		case '}':
			s.i++
			return nil
		case ',':
			s.i++
			s.skipWS()
		default:
			return s.errUnexpected("',' or '}'")
		}
	}
}

func (s *scanner) scanArray(depth int) error {
	if depth > maxDepth {
		return parseError("nesting deeper than %d", maxDepth)
	}
	s.i++ // '['
	s.skipWS()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if _, err := s.scanValue(depth); err != nil {
			return err
		}
		s.skipWS()
		if s.i >= len(s.b) {
			return s.errUnexpected("',' or ']'")
		}
		switch s.b[s.i] {
		case ']':
			s.i++
			return nil
		case ',':
			s.i++
			s.skipWS()
		default:
			return s.errUnexpected("',' or ']'")
		}
	}
}
