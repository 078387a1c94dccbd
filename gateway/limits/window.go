package limits

import "time"

// window is the span of rpm and tpm limits (DESIGN §11).
const window = 60 * time.Second

// exactLimit is the largest rpm limit kept as an exact log of admission
// times; larger limits are counted in one-second buckets.
const exactLimit = 4096

// admissions is a sliding window of admissions: a call is admitted when
// fewer than limit calls were admitted in the last 60 s. Up to exactLimit
// it keeps the last limit admission times in a ring, so the oldest is the
// one that must leave the window before another call fits. Above it, it
// counts admissions per second over the last 61 seconds (the current one
// included), which covers every 60 s window that ends now: it never admits
// more than limit in any 60 s window, and may admit a second's worth less.
type admissions struct {
	ring []int64 // unix nanoseconds, oldest at head once full
	head int
	n    int
	secs *secondCounts // for limits above exactLimit
}

// room reports whether one more call fits under limit at now; when it does
// not, wait is how long until it will.
func (a *admissions) room(limit int64, now int64) (ok bool, wait time.Duration) {
	if limit <= 0 {
		return false, window
	}
	if limit > exactLimit {
		if a.secs == nil {
			a.secs = &secondCounts{}
		}
		used, reset := a.secs.sum(now, 61)
		return used < limit, max(reset, time.Second)
	}
	a.resize(int(limit))
	if a.n < len(a.ring) {
		return true, 0
	}
	oldest := a.ring[a.head]
	if until := oldest + int64(window) - now; until > 0 {
		return false, time.Duration(until)
	}
	return true, 0
}

// add records an admission at now under limit; room must have said there
// was room.
func (a *admissions) add(limit, now int64) {
	if limit > exactLimit {
		a.secs.add(now, 1)
		return
	}
	if a.n < len(a.ring) {
		a.ring[(a.head+a.n)%len(a.ring)] = now
		a.n++
		return
	}
	a.ring[a.head] = now
	a.head = (a.head + 1) % len(a.ring)
}

// inWindow counts the admissions of the last 60 s under limit, and reports
// when the oldest of them leaves the window (0 when there is none).
func (a *admissions) inWindow(limit, now int64) (n int64, reset time.Duration) {
	if limit > exactLimit {
		return a.secs.sum(now, 61)
	}
	for i := range a.n {
		t := a.ring[(a.head+i)%len(a.ring)]
		if t > now-int64(window) {
			if n == 0 {
				reset = time.Duration(t + int64(window) - now)
			}
			n++
		}
	}
	return n, reset
}

// resize keeps the newest admissions when the limit changes.
func (a *admissions) resize(limit int) {
	if limit == len(a.ring) {
		return
	}
	keep := min(a.n, limit)
	ring := make([]int64, limit)
	for i := range keep {
		ring[i] = a.ring[(a.head+a.n-keep+i)%len(a.ring)]
	}
	a.ring, a.head, a.n = ring, 0, keep
}

// tokens sums the tokens of calls that finished in the last 60 s, in
// one-second buckets.
type tokens struct{ secondCounts }

func (t *tokens) sum60(now int64) (int64, time.Duration) { return t.sum(now, 60) }

// secondCounts sums counts per unix second over the last 61 seconds.
type secondCounts struct {
	sec [61]int64 // the unix second each bucket holds
	n   [61]int64
}

func (c *secondCounts) add(now int64, n int64) {
	s := now / int64(time.Second)
	i := s % int64(len(c.sec))
	if c.sec[i] != s {
		c.sec[i], c.n[i] = s, 0
	}
	c.n[i] += n
}

// sum returns the counts of the last span seconds (the current one
// included) and how long until the oldest bucket holding some leaves them.
func (c *secondCounts) sum(now int64, span int64) (total int64, reset time.Duration) {
	s := now / int64(time.Second)
	oldest := int64(-1)
	for i := range c.sec {
		if c.sec[i] > s-span && c.sec[i] <= s && c.n[i] > 0 {
			total += c.n[i]
			if oldest < 0 || c.sec[i] < oldest {
				oldest = c.sec[i]
			}
		}
	}
	if oldest >= 0 {
		reset = time.Duration((oldest+span)*int64(time.Second) - now)
	}
	return total, reset
}
