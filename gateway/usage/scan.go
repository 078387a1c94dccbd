package usage

// scan reads a usage object (obj runs from its '{' to its '}') without
// encoding/json's reflection, when it is in the plain form upstreams write:
// member names of lowercase ASCII letters, digits and '_'; each member that
// counts (prompt_tokens, completion_tokens, input_tokens, output_tokens,
// prompt_tokens_details, input_tokens_details and their cached_tokens)
// present once, as an integer of at most 18 digits without sign, fraction
// or exponent, or for the details an object; and elsewhere only strings of
// printable ASCII without escapes, numbers, true, false, null, and objects
// and arrays of those. For anything else it returns false and the caller
// decodes obj with encoding/json, which stays the reference:
// FuzzScanUsage checks that wherever scan answers, encoding/json answers
// the same.
//
// It exists for speed: decoding a chat answer's usage object with
// encoding/json takes 2.3 µs and 10 allocations, scan 0.24 µs and none
// (BenchmarkScan; docs/DECISIONS.md).
func scan(obj []byte) (f fields, ok bool) {
	s := scanner{b: obj}
	ok = s.object(0, func(name []byte) bool {
		switch string(name) {
		case "prompt_tokens":
			return s.count(&f.prompt, &f.has, hasPrompt)
		case "completion_tokens":
			return s.count(&f.completion, &f.has, hasCompletion)
		case "input_tokens":
			return s.count(&f.input, &f.has, hasInput)
		case "output_tokens":
			return s.count(&f.output, &f.has, hasOutput)
		case "prompt_tokens_details":
			return s.details(&f.promptCached, &f.has, hasPromptDetails)
		case "input_tokens_details":
			return s.details(&f.inputCached, &f.has, hasInputDetails)
		}
		return s.value(1)
	})
	return f, ok && s.i == len(obj)
}

// maxDepth bounds the nesting scan follows; deeper objects go to
// encoding/json.
const maxDepth = 16

type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() { s.i = skipSpace(s.b, s.i) }

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads an object, calling member with each member's name when the
// scanner is at its value.
func (s *scanner) object(depth int, member func(name []byte) bool) bool {
	if depth > maxDepth || !s.eat('{') {
		return false
	}
	s.space()
	if s.eat('}') {
		return true
	}
	for {
		s.space()
		name, ok := s.name()
		if !ok {
			return false
		}
		s.space()
		if !s.eat(':') {
			return false
		}
		s.space()
		if !member(name) {
			return false
		}
		s.space()
		if s.eat(',') {
			continue
		}
		return s.eat('}')
	}
}

// name reads a member name of lowercase ASCII letters, digits and '_'.
func (s *scanner) name() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			name := s.b[start:s.i]
			s.i++
			return name, true
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_':
			s.i++
		default:
			return nil, false
		}
	}
	return nil, false
}

// count reads a member that counts tokens into dst, once.
func (s *scanner) count(dst *int64, has *uint8, bit uint8) bool {
	if *has&bit != 0 {
		return false // a repeated member: encoding/json's last one wins
	}
	start := s.i
	if !s.digits() {
		return false
	}
	d := s.b[start:s.i]
	if len(d) > 18 || (len(d) > 1 && d[0] == '0') {
		return false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return false
	}
	var n int64
	for _, c := range d {
		n = n*10 + int64(c-'0')
	}
	*dst, *has = n, *has|bit
	return true
}

// details reads a *_tokens_details object's cached_tokens into dst, once.
func (s *scanner) details(dst *int64, has *uint8, bit uint8) bool {
	if *has&bit != 0 {
		return false
	}
	var cached uint8
	*dst = 0
	if !s.object(1, func(name []byte) bool {
		if string(name) == "cached_tokens" {
			return s.count(dst, &cached, 1)
		}
		return s.value(2)
	}) {
		return false
	}
	*has |= bit
	return true
}

// value reads any value of the plain form.
func (s *scanner) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		s.i++
		for s.i < len(s.b) {
			c := s.b[s.i]
			s.i++
			switch {
			case c == '"':
				return true
			case c < 0x20 || c > 0x7e || c == '\\':
				return false
			}
		}
		return false
	case c == '{':
		return s.object(depth, func([]byte) bool { return s.value(depth + 1) })
	case c == '[':
		if depth > maxDepth {
			return false
		}
		s.i++
		s.space()
		if s.eat(']') {
			return true
		}
		for {
			s.space()
			if !s.value(depth + 1) {
				return false
			}
			s.space()
			if s.eat(',') {
				continue
			}
			return s.eat(']')
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// number reads a JSON number.
func (s *scanner) number() bool {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.eat('.') && !s.digits() {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
