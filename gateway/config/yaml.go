package config

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// parser accumulates the config, its problems and its warnings.
type parser struct {
	env      func(string) (string, bool)
	now      time.Time
	cfg      *Config
	problems []Problem
	// droppedGlobal are the global aliases dropped because their target
	// names only unserved deployments.
	droppedGlobal map[string]bool
	// router collects the router settings (router.go).
	router routerDraft
	// merging holds the mappings whose merge keys, and aliasing the alias
	// targets whose values, are being expanded, to refuse cycles; merges
	// counts the merge keys being expanded, and expanded the fields and
	// values that merges and aliases brought in, against maxExpansion.
	merging, aliasing map[*yaml.Node]bool
	merges, expanded  int
}

// maxExpansion bounds the mapping fields and values that aliases and merge
// keys may bring into one config: a few lines of aliases that each refer
// to the one before twice ("billion laughs") would otherwise expand
// without end. What the document spells out is not counted.
const maxExpansion = 1 << 20

// expand counts n expanded fields or values and reports whether the
// budget allows them; the first time it does not, it reports a problem.
func (p *parser) expand(n, line int, path string) bool {
	if p.expanded > maxExpansion {
		return false
	}
	p.expanded += n
	if p.expanded > maxExpansion {
		p.errorf(line, "%s: aliases and merge keys expand to too many values", path)
		return false
	}
	return true
}

// enter adds n to the set of nodes being expanded; it reports false, and a
// problem, when n is in it already: n refers to itself through an alias or
// a merge key.
func (p *parser) enter(set *map[*yaml.Node]bool, n *yaml.Node, line int, path string) bool {
	if *set == nil {
		*set = make(map[*yaml.Node]bool)
	}
	if (*set)[n] {
		p.errorf(line, "%s: an alias or merge key refers to a value that contains it", path)
		return false
	}
	(*set)[n] = true
	return true
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.problems = append(p.problems, Problem{Line: line, Message: oneLine(fmt.Sprintf(format, args...))})
}

func (p *parser) warnf(line int, format string, args ...any) {
	p.cfg.Warnings = append(p.cfg.Warnings, Warning{Line: line, Message: oneLine(fmt.Sprintf(format, args...))})
}

// oneLine escapes, as Go writes them in a quoted string, the control
// characters and the Unicode line and paragraph separators of a message
// built from the file's text (a tag such as "!%0A" decodes to a newline),
// so that every problem stays one line of the report and of the log.
func oneLine(msg string) string {
	if !strings.ContainsFunc(msg, breaksLine) {
		return msg
	}
	var b strings.Builder
	for _, r := range msg {
		if breaksLine(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func breaksLine(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// field is one key of a mapping with its value.
type field struct {
	key   string
	line  int // line of the key
	value *yaml.Node
}

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data into its root node, reporting syntax errors with their
// line. It returns nil for an empty document or on error.
func (p *parser) document(data []byte) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := yamlErrLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		} else {
			line = unnumberedErrorLine(data, msg)
		}
		p.errorf(line, "invalid YAML: %s", msg)
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	p.checkDuplicates(root)
	return root
}

// unnumberedErrorLine is the line of a YAML error (message msg) reported
// without one. The YAML library leaves the line out of errors on the first
// line and of those its reader raises (invalid UTF-8, a character YAML
// does not allow) wherever they are; those are found again here.
func unnumberedErrorLine(data []byte, msg string) int {
	if !strings.Contains(msg, "UTF-8") && !strings.Contains(msg, "control characters") && !strings.Contains(msg, "Unicode") {
		return 1
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if (r == utf8.RuneError && size == 1) || !yamlAllowed(r) {
			return bytes.Count(data[:i], []byte("\n")) + 1
		}
		i += size
	}
	return 1
}

// yamlAllowed reports whether YAML 1.1 allows r in a document: tab, the
// line breaks and the printable characters.
func yamlAllowed(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		return true
	case r < 0x20 || r == 0x7f:
		return false
	case r < 0x7f:
		return true
	case r < 0xa0:
		return false
	}
	return r <= 0xd7ff || (r >= 0xe000 && r <= 0xfffd) || r >= 0x10000
}

// checkDuplicates reports every mapping key defined twice, anywhere in the
// document, including sections the gateway otherwise ignores.
func (p *parser) checkDuplicates(n *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		seen := make(map[string]int)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode && k.Tag != "!!merge" {
				if first, dup := seen[k.Value]; dup {
					p.errorf(k.Line, "duplicate key %q (first defined on line %d)", k.Value, first)
				} else {
					seen[k.Value] = k.Line
				}
			}
			p.checkDuplicates(n.Content[i+1])
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			p.checkDuplicates(c)
		}
	}
}

// deref follows YAML aliases (*anchor) to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// mapping returns the fields of a mapping node in order, with merge keys
// (<<: *anchor) expanded; explicit keys win over merged ones, and a key
// defined twice keeps its first definition (checkDuplicates reports it). A
// null node is an empty mapping. ok is false, and a problem is reported, when
// n is not a mapping.
func (p *parser) mapping(n *yaml.Node, path string) (fields []field, ok bool) {
	n = deref(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "%s: want a mapping, got %s", path, describe(n))
		return nil, false
	}
	if (p.merges > 0 && !p.expand(len(n.Content)/2, n.Line, path)) || !p.enter(&p.merging, n, n.Line, path) {
		return nil, false
	}
	defer delete(p.merging, n)
	seen := make(map[string]bool)
	var merged []field
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k.Line, "%s: mapping keys must be plain strings", path)
			continue
		}
		if k.Tag == "!!merge" {
			merged = append(merged, p.mergeFields(v, path)...)
			continue
		}
		if seen[k.Value] {
			continue
		}
		seen[k.Value] = true
		fields = append(fields, field{key: k.Value, line: k.Line, value: v})
	}
	for _, f := range merged {
		if !seen[f.key] {
			seen[f.key] = true
			fields = append(fields, f)
		}
	}
	return fields, true
}

// mergeFields returns the fields a merge key brings in: one mapping or a
// sequence of mappings, earlier ones winning.
func (p *parser) mergeFields(v *yaml.Node, path string) []field {
	v = deref(v)
	var srcs []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		srcs = []*yaml.Node{v}
	case yaml.SequenceNode:
		srcs = v.Content
	default:
		p.errorf(v.Line, "%s: merge key needs a mapping or a list of mappings", path)
		return nil
	}
	p.merges++
	defer func() { p.merges-- }()
	var out []field
	for _, s := range srcs {
		fs, _ := p.mapping(s, path)
		out = append(out, fs...)
	}
	return out
}

// sequence returns the items of a sequence node; null is empty.
func (p *parser) sequence(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	n = deref(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, "%s: want a list, got %s", path, describe(n))
		return nil, false
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		items[i] = deref(c)
	}
	return items, true
}

// str returns a scalar's text; null is "". Any scalar is accepted (a
// model_name of 4 is the name "4").
func (p *parser) str(n *yaml.Node, path string) (string, bool) {
	n = deref(n)
	if isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(n.Line, "%s: want a string, got %s", path, describe(n))
		return "", false
	}
	return n.Value, true
}

// envRef is the outcome of reading a string that may be os.environ/NAME.
type envRef struct {
	value string
	// name is the variable for an os.environ/ reference, else "".
	name string
	// unset is true when name is not set in the environment.
	unset bool
}

const envPrefix = "os.environ/"

// envStr reads a string field, resolving os.environ/NAME.
func (p *parser) envStr(n *yaml.Node, path string) (envRef, bool) {
	s, ok := p.str(n, path)
	if !ok || !strings.HasPrefix(s, envPrefix) {
		return envRef{value: s}, ok
	}
	name := strings.TrimPrefix(s, envPrefix)
	if name == "" {
		p.errorf(deref(n).Line, "%s: os.environ/ needs a variable name", path)
		return envRef{}, false
	}
	v, set := p.env(name)
	return envRef{value: v, name: name, unset: !set}, true
}

func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	n = deref(n)
	if isNull(n) {
		return false, true
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.errorf(n.Line, "%s: want true or false, got %s", path, describe(n))
		return false, false
	}
	return b, true
}

func (p *parser) integer(n *yaml.Node, path string) (int64, bool) {
	n = deref(n)
	var v int64
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		p.errorf(n.Line, "%s: want an integer, got %s", path, describe(n))
		return 0, false
	}
	return v, true
}

// strList reads a list of strings with the line of each entry.
func (p *parser) strList(n *yaml.Node, path string) (vals []string, lines []int, ok bool) {
	items, ok := p.sequence(n, path)
	if !ok {
		return nil, nil, false
	}
	ok = true
	for i, it := range items {
		if it.Kind != yaml.ScalarNode || isNull(it) {
			p.errorf(it.Line, "%s[%d]: want a string, got %s", path, i, describe(it))
			ok = false
			continue
		}
		vals = append(vals, it.Value)
		lines = append(lines, it.Line)
	}
	return vals, lines, ok
}

// strMap reads a mapping of strings to strings with the line of each key.
func (p *parser) strMap(n *yaml.Node, path string) (map[string]string, map[string]int, bool) {
	fields, ok := p.mapping(n, path)
	if !ok {
		return nil, nil, false
	}
	m := make(map[string]string, len(fields))
	lines := make(map[string]int, len(fields))
	for _, f := range fields {
		v := deref(f.value)
		if v.Kind != yaml.ScalarNode || isNull(v) {
			p.errorf(f.line, "%s.%s: want a string, got %s", path, f.key, describe(v))
			ok = false
			continue
		}
		m[f.key] = v.Value
		lines[f.key] = f.line
	}
	if len(m) == 0 {
		return nil, lines, ok
	}
	return m, lines, ok
}

// metadata reads a free-form mapping into JSON-compatible values.
func (p *parser) metadata(n *yaml.Node, path string) (map[string]any, bool) {
	if isNull(n) {
		return nil, true
	}
	if deref(n).Kind != yaml.MappingNode {
		p.errorf(deref(n).Line, "%s: want a mapping, got %s", path, describe(deref(n)))
		return nil, false
	}
	v, ok := p.value(n, path, 0)
	if !ok {
		return nil, false
	}
	return v.(map[string]any), true
}

// value converts a node to the JSON data model: map[string]any, []any,
// string, int64, float64, bool or nil. Timestamps stay strings as written.
func (p *parser) value(n *yaml.Node, path string, depth int) (any, bool) {
	if n.Kind == yaml.AliasNode {
		line := n.Line
		n = deref(n)
		if !p.enter(&p.aliasing, n, line, path) {
			return nil, false
		}
		defer delete(p.aliasing, n)
	}
	if depth > 64 {
		p.errorf(n.Line, "%s: nested too deeply", path)
		return nil, false
	}
	if len(p.aliasing) > 0 && !p.expand(1, n.Line, path) {
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		fields, ok := p.mapping(n, path)
		m := make(map[string]any, len(fields))
		for _, f := range fields {
			v, vok := p.value(f.value, path+"."+f.key, depth+1)
			ok = ok && vok
			m[f.key] = v
		}
		return m, ok
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		ok := true
		for i, c := range n.Content {
			v, vok := p.value(c, fmt.Sprintf("%s[%d]", path, i), depth+1)
			ok = ok && vok
			s[i] = v
		}
		return s, ok
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			if n.Decode(&b) == nil {
				return b, true
			}
		case "!!int":
			var i int64
			if n.Decode(&i) == nil {
				return i, true
			}
		case "!!float":
			var f float64
			if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f, true
			}
			p.errorf(n.Line, "%s: %s is not a JSON number", path, n.Value)
			return nil, false
		}
		return n.Value, true
	}
	p.errorf(n.Line, "%s: unsupported YAML value", path)
	return nil, false
}

// describe names a node's type for messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return strings.TrimPrefix(n.Tag, "!!")
	}
	return "an unexpected value"
}
