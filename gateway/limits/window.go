package limits

import "time"

// window is the span of rpm and tpm limits (DESIGN §11).
const window = 60 * time.Second

// admissions is a sliding-window log of admission times: a call is
// admitted when fewer than limit calls were admitted in the last 60 s. It
// keeps the last limit admission times in a ring, so the oldest is the one
// that must leave the window before another call fits.
type admissions struct {
	ring []int64 // unix nanoseconds, oldest at head once full
	head int
	n    int
}

// room reports whether one more call fits under limit at now; when it does
// not, wait is how long until it will.
func (a *admissions) room(limit int64, now int64) (ok bool, wait time.Duration) {
	if limit <= 0 {
		return false, window
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

// add records an admission at now; room must have said there was room.
func (a *admissions) add(now int64) {
	if a.n < len(a.ring) {
		a.ring[(a.head+a.n)%len(a.ring)] = now
		a.n++
		return
	}
	a.ring[a.head] = now
	a.head = (a.head + 1) % len(a.ring)
}

// inWindow counts the admissions of the last 60 s, and reports when the
// oldest of them leaves the window (0 when there is none).
func (a *admissions) inWindow(now int64) (n int, reset time.Duration) {
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
	if limit > 1<<20 {
		limit = 1 << 20 // the ring's memory stays bounded; 1M calls a minute
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
type tokens struct {
	sec [60]int64 // the unix second each bucket holds
	n   [60]int64
}

func (t *tokens) add(now int64, n int64) {
	s := now / int64(time.Second)
	i := s % 60
	if t.sec[i] != s {
		t.sec[i], t.n[i] = s, 0
	}
	t.n[i] += n
}

// sum returns the tokens of the last 60 s and how long until the oldest
// bucket holding some leaves the window.
func (t *tokens) sum(now int64) (total int64, reset time.Duration) {
	s := now / int64(time.Second)
	oldest := int64(-1)
	for i := range t.sec {
		if t.sec[i] > s-60 && t.sec[i] <= s && t.n[i] > 0 {
			total += t.n[i]
			if oldest < 0 || t.sec[i] < oldest {
				oldest = t.sec[i]
			}
		}
	}
	if oldest >= 0 {
		reset = time.Duration((oldest+60)*int64(time.Second) - now)
	}
	return total, reset
}
