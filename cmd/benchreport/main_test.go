package main

import (
	"os"
	"strings"
	"testing"
)

const oldReport = `# Benchmarks

Written by x on 2026-01-01 00:00 UTC.

Machine: test.

## A

Section A, old.

- a target: 1 µs (target ≤ 2 µs): met

## B

Section B, old.

- b target: slow: 9 ms (target ≤ 1 ms): NOT met
- b other: 1 (target ≤ 1): met

## D

Section D, old.
- d item

## Targets

- a target: 1 µs (target ≤ 2 µs): met
- b target: slow: 9 ms (target ≤ 1 ms): NOT met
- b other: 1 (target ≤ 1): met
- gone: a target of a section that no longer exists
`

func TestParseRenderRoundTrip(t *testing.T) {
	if got := parseReport(oldReport).render(); got != oldReport {
		t.Errorf("parseReport(old).render() =\n%s\nwant\n%s", got, oldReport)
	}
	// The committed report, written by the full run, survives too.
	b, err := os.ReadFile("../../BENCHMARKS.md")
	if err != nil {
		t.Skip(err)
	}
	if got := parseReport(string(b)).render(); got != string(b) {
		t.Errorf("parseReport(BENCHMARKS.md).render() differs from the file")
	}
}

func TestSplice(t *testing.T) {
	order := []string{"A", "B", "C", "D", "E"}
	whats := map[string][]string{"A": {"a target"}, "B": {"b target: slow", "b other"}, "C": {"c target"}}
	tests := []struct {
		name         string
		fresh        []part
		wantTitles   []string
		wantSections map[string]string // title → text, for the fresh ones
		wantSummary  []string
	}{
		{
			name:       "replace in place",
			fresh:      []part{{title: "B", text: "## B\n\nSection B, new.\n\n- b target: slow: 0.5 ms (target ≤ 1 ms): met\n", summary: []string{"b target: slow: 0.5 ms (target ≤ 1 ms): met", "b other: 0 (target ≤ 1): met"}}},
			wantTitles: []string{"A", "B", "D"},
			wantSummary: []string{
				"a target: 1 µs (target ≤ 2 µs): met",
				"b target: slow: 0.5 ms (target ≤ 1 ms): met",
				"b other: 0 (target ≤ 1): met",
				"gone: a target of a section that no longer exists",
			},
		},
		{
			name: "new sections in order",
			fresh: []part{
				{title: "E", text: "## E\n\nSection E.\n"},
				{title: "C", text: "## C\n\nSection C.\n", summary: []string{"c target: 3 (target ≤ 4): met"}},
			},
			wantTitles: []string{"A", "B", "C", "D", "E"},
			wantSummary: []string{
				"a target: 1 µs (target ≤ 2 µs): met",
				"b target: slow: 9 ms (target ≤ 1 ms): NOT met",
				"b other: 1 (target ≤ 1): met",
				"c target: 3 (target ≤ 4): met",
				"gone: a target of a section that no longer exists",
			},
		},
		{
			name:       "replace the first, nothing of others",
			fresh:      []part{{title: "A", text: "## A\n\nSection A, new.\n\n\n", summary: []string{"a target: not measured"}}},
			wantTitles: []string{"A", "B", "D"},
			wantSummary: []string{
				"a target: not measured",
				"b target: slow: 9 ms (target ≤ 1 ms): NOT met",
				"b other: 1 (target ≤ 1): met",
				"gone: a target of a section that no longer exists",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := parseReport(oldReport)
			got := parseReport(splice(old, tc.fresh, order, whats).render())
			if got.head != old.head {
				t.Errorf("head = %q, want %q", got.head, old.head)
			}
			var titles []string
			for _, p := range got.sections {
				titles = append(titles, p.title)
			}
			if strings.Join(titles, ",") != strings.Join(tc.wantTitles, ",") {
				t.Errorf("sections = %v, want %v", titles, tc.wantTitles)
			}
			fresh := map[string]string{}
			for _, f := range tc.fresh {
				fresh[f.title] = normalize(f.text)
			}
			for _, p := range got.sections {
				want, isFresh := fresh[p.title]
				if !isFresh {
					want = old.sections[indexOf(old.sections, p.title)].text
				}
				if p.text != want {
					t.Errorf("section %s = %q, want %q", p.title, p.text, want)
				}
			}
			if strings.Join(got.summary, "\n") != strings.Join(tc.wantSummary, "\n") {
				t.Errorf("summary =\n%s\nwant\n%s", strings.Join(got.summary, "\n"), strings.Join(tc.wantSummary, "\n"))
			}
		})
	}
}

func TestSectionsHaveDistinctTitles(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range sections() {
		if seen[s.title] || s.title == targetsTitle {
			t.Errorf("section title %q repeats or is the summary's", s.title)
		}
		seen[s.title] = true
	}
}
