package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// specials are the sections measured by tests rather than benchmarks: each
// runs one go test -v and reports the lines the test logs that match.
var specials = []section{
	{
		title: "Revocation across replicas (tests, PostgreSQL)",
		run: func() (string, []string) {
			return testSection("Revocation across replicas (tests, PostgreSQL)",
				"Two gateway processes on one database; a key blocked, narrowed or deleted through replica A is polled on replica B until refused (deadline 1 s).",
				"", []string{"test", "-count=1", "-run", "^TestReplicaRevocationUnderOneSecond$", "-v", "./tests/"}, nil,
				regexp.MustCompile(`(?m)^\s+\S+\.go:\d+: (.*(?:reached replica B|worst propagation).*)$`)), nil
		},
	},
	{
		title: "Limits across replicas (tests, PostgreSQL)",
		run: func() (string, []string) {
			return testSection("Limits across replicas (tests, PostgreSQL)",
				"Replicas on one database. A burst of 3× a key's rpm_limit (60), all sent at once and spread evenly over two and over three replicas (target: at least the limit, at most +10%); and a key's budget spent through two replicas, one call every 100 ms, alternating (documented bound: what the other replica admits in two sync intervals, 2 s).",
				"", []string{"test", "-count=1", "-run", "^(TestRPMBurstOverReplicas|TestBudgetOverReplicas)$", "-v", "./tests/"}, nil,
				regexp.MustCompile(`(?m)^\s+\S+\.go:\d+: ((?:rpm_limit|budget) .*)$`)), nil
		},
	},
	{
		title: "Soak",
		run: func() (string, []string) {
			d := os.Getenv("REGATE_SOAK")
			if d == "" {
				d = "10m"
			}
			return testSection("Soak",
				"The real binary (built by the test, in a process of its own) for "+d+" (REGATE_SOAK) under mixed traffic from 24 client loops in the test's process sending back to back: chat calls (40%), streams of 20 chunks 5 ms apart (40%), GET /v1/models (10%, a list of about 400 models) and GET /v1/models/{id} (10%), for a model group with two deployments on two httptest upstreams (gateway/mock), an alias of it, a name a wildcard group serves and 400 other groups. About one request in six is aborted by its client at a random moment: a chat call cancelled while the upstream waits, or its body cut off halfway through the upload; a stream cancelled after a random number of chunks; a GET cancelled within 2 ms. Goroutines (go_goroutines from the gateway's /metrics), open files (the entries of /proc/PID/fd) and resident memory (VmRSS from /proc/PID/status) are read before the traffic (after 30 s of the same traffic, once two readings half a second apart agree), every second during it (peak: the largest reading) and after it (10 s after the traffic stopped, then every half second until back within the rules, for at most 30 s). Before both quiet readings the clients' idle connections are closed and the upstreams close theirs (the gateway's idle upstream pool), so both are readings of a gateway holding no connections. The rules: goroutines after ≤ before + 5; open files after ≤ before + 2; RSS after ≤ max(1.25 × before, before + 16 MB). RSS is what the process holds, not its live heap: Go keeps freed heap for reuse and returns it to the system in the background, which the RSS rule leaves room for; no debug endpoint forces a collection. Errors are transport errors, answers other than 200 and streams without [DONE] among the requests the clients did not abort; the latencies are of those requests (streams: time to the first event). The machine is shared with other work (2 logical CPUs, the load, the upstreams and the gateway on them together): the latencies are indicative only.",
				"", []string{"test", "-count=1", "-run", "^TestSoak$", "-v", "-timeout", "60m", "./tests/"}, []string{"REGATE_SOAK=" + d},
				regexp.MustCompile(`(?m)^\s+\S+\.go:\d+: soak: (.*)$`)), nil
		},
	},
	{
		title: "Timing: forbidden vs nonexistent",
		run: func() (string, []string) {
			return testSection("Timing: forbidden vs nonexistent",
				"DESIGN §2: no timing difference may tell a key which models exist. The real binary (a process of its own, GOMAXPROCS=1) with a catalog of 600 model groups (200 of them in an access group) on an httptest upstream, 40 global aliases (chains of one to three hops) and 20 wildcard groups, and a key whose team allows 80 groups and two globs. Requests for (a) models that exist but the key may not use and (b) models that do not exist, both answered with the same 404 model_not_found (checked on every answer, header names included), are sent one at a time over one kept-alive connection and timed by the client. Each round has two phases, each in random interleaved order: 40 names of each kind (groups, aliases three hops deep, names a wildcard serves; the nonexistent ones of the same lengths and shapes), each asked a few times before, as chat completions and as GET /v1/models/{id}; then chat completions for names never asked before (forbidden: names a wildcard group serves; nonexistent: the same shape). REGATE_TIMING samples of each kind per route and round, three rounds. The noise is the same measurement between two sets of the same kind: each kind's samples are split at random into two halves, and the noise is the larger |median(half 1) − median(half 2)|; the requirement, for repeated names and for names never asked before, is mean |median(a) − median(b)| < mean noise over the rounds. The run-to-run spread (max − min of one kind's median over the rounds) shows how much the machine, shared with other work, moves the absolute figures: compare within a round, not across.",
				timingNote, []string{"test", "-count=1", "-run", "^TestTimingForbiddenVsNonexistent$", "-v", "-timeout", "60m", "./tests/"}, []string{"REGATE_TIMING=5000"},
				regexp.MustCompile(`(?m)^\s+\S+\.go:\d+: timing: (.*)$`)), nil
		},
	},
}

// timingNote says what made forbidden and nonexistent models differ, what
// was changed and what is left.
const timingNote = "Before issue 16 a nonexistent name took longer: a forbidden model's resolution comes from the catalog's table, the same lists every time, so the principal's decision memo (keyed on the lists' identity) answered it, while a name not found was resolved anew on every request, missed the memo and was evaluated (about 15–40 µs more over HTTP here, both routes; 1,000 samples: chat +14 µs against 6 µs of noise, GET /v1/models/{id} +36 µs against 11 µs). The catalog now caches resolutions of names not found like those of names a wildcard serves (4,096 at most, then it starts over), so a repeated name is answered from the memo whether it exists or not. And the default policy decided a nonexistent model's denial early: _model_allowed tested found before the layers, and the reasons of a not-found denial skipped the layers' verdicts; it now checks the layers first and gives a not-found denial the layers' verdicts too, so both denials do the same rule work (in process, a denial evaluated without the memo was about 3× as costly for a forbidden model as for a nonexistent one before, about 1.2× after, on a loaded machine). A decision the memo cannot answer (a name never asked before, or any name once the memo of 256 decisions has started over, which a client can force with new names) differed by about 20–30 µs more: most of it was OPA's rule index, which skipped _model_allowed's body outright for a model not found because the body tested input.model.found == true; the policy now reads found through object.get, which the index does not see, so both denials evaluate the same bodies (in process, a wildcard-served forbidden name against a nonexistent one: 123 against 99 µs before, about 121 against 109 µs after). That left new names about 8–13 µs apart (runs differ), always the same way, from three sources, measured in process with the two kinds interleaved (rego and catalog, 8,000 decisions each) and through the binary: (1) a name a wildcard serves was resolved with a built-in catalog lookup of its upstream model (about 3 µs through the binary) that a name not found skips; a name not found now does the same work for the first wildcard group that substitutes names (catalog.mimicServing; the result is thrown away, as a login hashes a dummy password for an unknown user); (2) a denial's reasons matched the chain against each layer again (three times per name in the residual: about 1.5 µs per name), so a longer chain cost more; the reasons now take each layer's verdict from the rules the decision already evaluated (OPA keeps their values within an evaluation), about 0.5 µs per name, and a denial evaluated without the memo costs about 13% less (67 against 78 µs in process); (3) the reasons' rules tested found and an empty chain in different numbers for the two kinds (a found model about 1.2 µs more); the not-found rule is now split on the empty chain like the others, and a found model is now about 1 µs cheaper than a name not found, which a wildcard-served name's second name and its chain make up. In process a wildcard-served forbidden name and a nonexistent one are now within 0.3 µs of each other (67.5 against 67.2 µs), against 4 µs before. Limits: the mimicked work is that of one wildcard group, so a name served by a group with more substituting deployments still costs a little more when first asked; and once the memo has started over, a forbidden alias three hops deep (five names) costs about 1 µs more than a nonexistent name (in process; not measured through the binary)."

// testSection runs go args with env, and writes a section whose items are
// the matches of lines in its output (the first group), with intro, the
// command and note.
func testSection(title, intro, note string, args, env []string, lines *regexp.Regexp) string {
	var w bytes.Buffer
	o, err := run(args, env...)
	cmd := "go " + strings.Join(args, " ")
	if len(env) > 0 {
		cmd = strings.Join(env, " ") + " " + cmd
	}
	fmt.Fprintf(&w, "## %s\n\n%s Command: `%s`\n\n", title, intro, cmd)
	ms := lines.FindAllSubmatch(o, -1)
	for _, m := range ms {
		fmt.Fprintf(&w, "- %s\n", m[1])
	}
	switch {
	case len(ms) > 0 && err != nil:
		fmt.Fprintf(&w, "\nThe test failed: %v (see the lines above).\n", err)
	case err != nil:
		fmt.Fprintf(&w, "Not measured: %v.\n", err)
	case len(ms) == 0:
		fmt.Fprintf(&w, "Not measured (the test skipped).\n")
	}
	if note != "" {
		fmt.Fprintf(&w, "\n%s\n", note)
	}
	return w.String()
}
