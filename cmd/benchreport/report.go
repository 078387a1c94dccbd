package main

import (
	"strings"
)

// targetsTitle is the title of the report's last section, the summary of
// every target.
const targetsTitle = "Targets"

// report is BENCHMARKS.md taken apart: what comes before the first section
// (the title, the date and the machine), the sections in order, and the
// lines of the summary.
type report struct {
	head     string
	sections []part
	summary  []string
}

// part is one section of the report: its title (the "## " heading), its
// whole text (the heading included, ending in one blank line) and the
// summary lines of its targets.
type part struct {
	title   string
	text    string
	summary []string
}

// parseReport takes a report written by render apart. The summary lines of
// the sections are not known from the text alone: they all go to
// report.summary.
func parseReport(s string) report {
	var r report
	lines := strings.SplitAfter(s, "\n")
	var cur *part
	var b strings.Builder
	flush := func() {
		if cur == nil {
			r.head = b.String()
		} else {
			cur.text = normalize(b.String())
			if cur.title == targetsTitle {
				for _, l := range strings.Split(cur.text, "\n") {
					if item, ok := strings.CutPrefix(l, "- "); ok {
						r.summary = append(r.summary, item)
					}
				}
			} else {
				r.sections = append(r.sections, *cur)
			}
		}
		b.Reset()
	}
	for _, l := range lines {
		if title, ok := strings.CutPrefix(l, "## "); ok {
			flush()
			cur = &part{title: strings.TrimSpace(title)}
		}
		b.WriteString(l)
	}
	flush()
	return r
}

// normalize ends a section's text with exactly one blank line.
func normalize(text string) string {
	return strings.TrimRight(text, " \n") + "\n\n"
}

// render writes the report: head, sections, then the targets summary.
func (r report) render() string {
	var b strings.Builder
	b.WriteString(r.head)
	for _, p := range r.sections {
		b.WriteString(normalize(p.text))
	}
	b.WriteString("## " + targetsTitle + "\n\n")
	for _, l := range r.summary {
		b.WriteString("- " + l + "\n")
	}
	return b.String()
}

// splice puts fresh sections into old: each in place of the old section of
// the same title, or, for a title old does not have, after the last old
// section that comes before it in order (the titles of every section, in
// report order), else before the first. The summary is rebuilt in order:
// a fresh section's lines replace the old lines of its targets (whats maps
// a title to the what of each of its targets: a summary line is
// "what: figure"); old lines that belong to no section in order are kept
// at the end. Everything else of old is kept as it was.
func splice(old report, fresh []part, order []string, whats map[string][]string) report {
	rank := map[string]int{}
	for i, t := range order {
		rank[t] = i
	}
	out := report{head: old.head, sections: append([]part(nil), old.sections...)}
	byTitle := map[string]part{}
	for _, f := range fresh {
		byTitle[f.title] = f
		i := indexOf(out.sections, f.title)
		if i >= 0 {
			out.sections[i] = f
			continue
		}
		at := 0
		if r, known := rank[f.title]; known {
			for j, p := range out.sections {
				if pr, ok := rank[p.title]; ok && pr < r {
					at = j + 1
				}
			}
		}
		out.sections = append(out.sections[:at], append([]part{f}, out.sections[at:]...)...)
	}

	owner := func(line string) (string, bool) {
		for _, t := range order {
			for _, w := range whats[t] {
				if strings.HasPrefix(line, w+": ") {
					return t, true
				}
			}
		}
		return "", false
	}
	oldOf := map[string][]string{}
	var orphans []string
	for _, l := range old.summary {
		if t, ok := owner(l); ok {
			oldOf[t] = append(oldOf[t], l)
		} else {
			orphans = append(orphans, l)
		}
	}
	for _, t := range order {
		if f, ok := byTitle[t]; ok {
			out.summary = append(out.summary, f.summary...)
		} else {
			out.summary = append(out.summary, oldOf[t]...)
		}
	}
	out.summary = append(out.summary, orphans...)
	return out
}

func indexOf(ps []part, title string) int {
	for i, p := range ps {
		if p.title == title {
			return i
		}
	}
	return -1
}
