package modelinfo

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// rawMatch is a match rule as written: exactly one field is set. Not is the
// generator's form of a regex "^(?!X)", which RE2 cannot run.
type rawMatch struct {
	Equals     *string    `json:"equals"`
	StartsWith *string    `json:"starts_with"`
	EndsWith   *string    `json:"ends_with"`
	Contains   *string    `json:"contains"`
	Regex      *string    `json:"regex"`
	Or         []rawMatch `json:"or"`
	And        []rawMatch `json:"and"`
	Not        *rawMatch  `json:"not"`
}

type matchKind int

const (
	matchEquals matchKind = iota
	matchStartsWith
	matchEndsWith
	matchContains
	matchRegex
	matchOr
	matchAnd
	matchNot
)

// matcher is a compiled match rule. String operands are lower-cased, and
// names are lower-cased before matching, so string rules ignore case as the
// package's do; a regex sees the lower-cased name, as the package's
// calcPrice gives it.
type matcher struct {
	kind matchKind
	s    string
	re   *regexp.Regexp
	subs []matcher
}

var errMatch = errors.New("a match rule needs exactly one of equals, starts_with, ends_with, contains, regex, or, and, not")

func compile(r rawMatch) (matcher, error) {
	var m matcher
	set := 0
	for _, f := range []struct {
		v    *string
		kind matchKind
	}{{r.Equals, matchEquals}, {r.StartsWith, matchStartsWith}, {r.EndsWith, matchEndsWith}, {r.Contains, matchContains}, {r.Regex, matchRegex}} {
		if f.v != nil {
			set++
			m.kind, m.s = f.kind, strings.ToLower(*f.v)
		}
	}
	if m.kind == matchRegex {
		re, err := regexp.Compile(*r.Regex)
		if err != nil {
			return m, fmt.Errorf("regex %q: %w", *r.Regex, err)
		}
		m.re, m.s = re, ""
	}
	for _, f := range []struct {
		subs []rawMatch
		kind matchKind
	}{{r.Or, matchOr}, {r.And, matchAnd}} {
		if f.subs == nil {
			continue
		}
		set++
		m.kind = f.kind
		for _, sub := range f.subs {
			c, err := compile(sub)
			if err != nil {
				return m, err
			}
			m.subs = append(m.subs, c)
		}
	}
	if r.Not != nil {
		set++
		c, err := compile(*r.Not)
		if err != nil {
			return m, err
		}
		m.kind, m.subs = matchNot, []matcher{c}
	}
	if set != 1 {
		return m, errMatch
	}
	return m, nil
}

// matches reports whether the lower-cased name satisfies the rule.
func (m *matcher) matches(name string) bool {
	switch m.kind {
	case matchEquals:
		return name == m.s
	case matchStartsWith:
		return strings.HasPrefix(name, m.s)
	case matchEndsWith:
		return strings.HasSuffix(name, m.s)
	case matchContains:
		return strings.Contains(name, m.s)
	case matchRegex:
		return m.re.MatchString(name)
	case matchOr:
		for i := range m.subs {
			if m.subs[i].matches(name) {
				return true
			}
		}
		return false
	case matchAnd:
		for i := range m.subs {
			if !m.subs[i].matches(name) {
				return false
			}
		}
		return true
	case matchNot:
		return !m.subs[0].matches(name)
	}
	return false
}

// dashDates writes each compact date suffix of name with dashes, as the
// package's second lookup does: "-YYYYMMDD" (a valid calendar date in
// 2000–2099) followed by '-', ':' or the end becomes "-YYYY-MM-DD".
func dashDates(name string) string {
	var b strings.Builder
	last := 0
	for i := 0; i+9 <= len(name); i++ {
		if name[i] != '-' || name[i+1] != '2' || name[i+2] != '0' || !digits(name[i+3:i+9]) {
			continue
		}
		if end := i + 9; end < len(name) && name[end] != '-' && name[end] != ':' {
			continue
		}
		d := name[i+1 : i+9]
		if _, err := time.Parse("20060102", d); err != nil {
			continue
		}
		b.WriteString(name[last:i])
		b.WriteString("-" + d[:4] + "-" + d[4:6] + "-" + d[6:])
		last = i + 9
		i += 8
	}
	if last == 0 {
		return name
	}
	b.WriteString(name[last:])
	return b.String()
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
