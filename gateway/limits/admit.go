package limits

import (
	"time"

	"github.com/regate/gateway/gateway"
)

// check is one layer's limits for a call: the entity and what limits it.
type check struct {
	e        *entity
	layer    string
	model    string // a key's model group, for its model_* limits
	budget   *float64
	soft     *float64
	duration time.Duration
	anchor   time.Time // the record's creation: budget periods start from it
	rpm, tpm *int64
	parallel *int64
}

// Ticket is an admitted call. Its Done must be called once the call has
// ended (a stream: after its last byte).
type Ticket struct {
	l      *Limiter
	checks [4]check
	n      int
	// The call's principal and model group, for the daily usage.
	key, team, user, model string
	// Headers are OpenAI's rate-limit headers for the tightest layer.
	Headers gateway.RateHeaders
	done    bool
}

// Admit checks every layer of p that limits a call to model group and,
// when all have room, counts the call (rpm, parallel) and returns its
// ticket. Otherwise it returns a *gateway.LimitError for the first layer
// without room (key, the key's model group, team, user; budget, rpm, tpm,
// parallel) and counts nothing. Admit never blocks on I/O.
func (l *Limiter) Admit(p *gateway.Principal, model string) (*Ticket, error) {
	t := l.ticket(p, model)
	if t.n == 0 {
		return t, nil
	}
	now := l.now()
	// Lock in a fixed order (key, key model, team, user): two calls never
	// wait on each other in a cycle.
	cs := t.checks[:t.n]
	for i := range cs {
		cs[i].e.mu.Lock()
	}
	err := t.admit(now)
	t.headers(now.UnixNano())
	for i := range cs {
		cs[i].e.mu.Unlock()
	}
	if err != nil {
		err.Rate = t.Headers
		if l.obs != nil {
			l.obs.Limited(err.Layer, err.Kind)
		}
		return nil, err
	}
	return t, nil
}

// ticket gathers the checks of p's layers for a call to model group.
func (l *Limiter) ticket(p *gateway.Principal, model string) *Ticket {
	t := &Ticket{l: l, model: model}
	if p == nil || p.Key == nil {
		return t
	}
	k := p.Key
	t.key = k.ID
	t.add(l, entKey{layer: gateway.LayerKey, id: k.ID}, gateway.LayerKey, k.CreatedAt, &k.Limits)
	if !k.ModelLimits.IsZero() && model != "" {
		ml := &k.ModelLimits
		c := check{layer: gateway.LayerKey, model: model, anchor: k.CreatedAt}
		if v, ok := ml.RPM[model]; ok {
			c.rpm = &v
		}
		if v, ok := ml.TPM[model]; ok {
			c.tpm = &v
		}
		if b, ok := ml.Budget[model]; ok {
			c.budget, c.duration = &b.BudgetLimit, parseDuration(b.TimePeriod)
		}
		if c.rpm != nil || c.tpm != nil || c.budget != nil {
			c.e = l.entity(entKey{layer: gateway.LayerKey, id: k.ID, model: model})
			t.checks[t.n] = c
			t.n++
		}
	}
	if p.Team != nil {
		t.team = p.Team.ID
		t.add(l, entKey{layer: gateway.LayerTeam, id: p.Team.ID}, gateway.LayerTeam, p.Team.CreatedAt, &p.Team.Limits)
	}
	if p.User != nil {
		t.user = p.User.ID
		t.add(l, entKey{layer: gateway.LayerUser, id: p.User.ID}, gateway.LayerUser, p.User.CreatedAt, &p.User.Limits)
	}
	return t
}

// add appends the check of one layer; every layer is tracked for its
// spend, limited or not.
func (t *Ticket) add(l *Limiter, k entKey, layer string, anchor time.Time, lim *gateway.Limits) {
	t.checks[t.n] = check{
		e: l.entity(k), layer: layer, anchor: anchor,
		budget: lim.MaxBudget, soft: lim.SoftBudget, duration: parseDuration(lim.BudgetDuration),
		rpm: lim.RPMLimit, tpm: lim.TPMLimit, parallel: lim.MaxParallelRequests,
	}
	t.n++
}

// admit checks then counts, with every entity locked.
func (t *Ticket) admit(at time.Time) *gateway.LimitError {
	now := at.UnixNano()
	cs := t.checks[:t.n]
	for i := range cs {
		if err := cs[i].budgetErr(at); err != nil {
			return err
		}
	}
	for i := range cs {
		if err := cs[i].rateErr(t.l, now); err != nil {
			return err
		}
	}
	for i := range cs {
		cs[i].count(t.l, now)
	}
	return nil
}

// budgetErr rolls c's budget period to at and refuses a spent budget.
func (c *check) budgetErr(at time.Time) *gateway.LimitError {
	c.e.roll(at, c.duration, c.anchor)
	if c.budget != nil && c.e.spend() >= *c.budget {
		return &gateway.LimitError{Layer: c.layer, Kind: gateway.LimitBudget, Model: c.model}
	}
	return nil
}

// rateErr refuses a call c's rpm, tpm or parallel limit has no room for.
func (c *check) rateErr(l *Limiter, now int64) *gateway.LimitError {
	if c.rpm != nil {
		if ok, wait := c.e.rpm.room(l.share(*c.rpm), now); !ok {
			return &gateway.LimitError{Layer: c.layer, Kind: gateway.LimitRPM, Model: c.model, RetryAfter: wait}
		}
	}
	if c.tpm != nil {
		used, reset := c.e.tpm.sum60(now)
		if used >= l.share(*c.tpm) {
			return &gateway.LimitError{Layer: c.layer, Kind: gateway.LimitTPM, Model: c.model, RetryAfter: max(reset, time.Second)}
		}
	}
	if c.parallel != nil && c.e.inflight >= l.share(*c.parallel) {
		return &gateway.LimitError{Layer: c.layer, Kind: gateway.LimitParallel, Model: c.model, RetryAfter: time.Second}
	}
	return nil
}

// count counts an admitted call against c.
func (c *check) count(l *Limiter, now int64) {
	if c.rpm != nil {
		c.e.rpm.add(l.share(*c.rpm), now)
	}
	if c.parallel != nil {
		c.e.inflight++
	}
}

// Retarget moves an admitted, not yet done call to model group model: a
// fallback (DESIGN §12). The key's limits for model must have room; they
// then count the call, and its tokens, spend and daily usage go to model
// when it is done. The limits of the key, team and user, and the request
// already counted against the model group first asked for, stay as they
// are. On a *gateway.LimitError the ticket is unchanged.
func (t *Ticket) Retarget(p *gateway.Principal, model string) error {
	if t == nil || t.done || model == t.model {
		return nil
	}
	l := t.l
	if l == nil {
		return nil
	}
	next := l.ticket(p, model)
	var fresh *check
	for i := range next.checks[:next.n] {
		if next.checks[i].model != "" {
			fresh = &next.checks[i]
		}
	}
	if fresh != nil {
		at := l.now()
		fresh.e.mu.Lock()
		err := fresh.budgetErr(at)
		if err == nil {
			err = fresh.rateErr(l, at.UnixNano())
		}
		if err == nil {
			fresh.count(l, at.UnixNano())
		}
		fresh.e.mu.Unlock()
		if err != nil {
			if l.obs != nil {
				l.obs.Limited(err.Layer, err.Kind)
			}
			return err
		}
	}
	// Swap the model check: drop the old one, put the new one after the
	// key's own (the lock order of admit).
	kept := t.checks[:0]
	for _, c := range t.checks[:t.n] {
		if c.model == "" {
			kept = append(kept, c)
		}
	}
	n := len(kept)
	if fresh != nil {
		copy(t.checks[2:n+1], t.checks[1:n])
		t.checks[1] = *fresh
		n++
	}
	t.n, t.model = n, model
	return nil
}

// headers fills in the rate-limit headers from the windows as they are,
// with every entity locked.
func (t *Ticket) headers(now int64) {
	l := t.l
	for i := range t.checks[:t.n] {
		c := &t.checks[i]
		if c.rpm != nil {
			share := l.share(*c.rpm)
			n, reset := c.e.rpm.inWindow(share, now)
			tighter(&t.Headers.Requests, *c.rpm, share-n, reset)
		}
		if c.tpm != nil {
			used, reset := c.e.tpm.sum60(now)
			tighter(&t.Headers.Tokens, *c.tpm, l.share(*c.tpm)-used, reset)
		}
	}
}

// tighter keeps the layer with the least room.
func tighter(h *gateway.RateHeader, limit, remaining int64, reset time.Duration) {
	remaining = max(remaining, 0)
	if h.Set && remaining >= h.Remaining {
		return
	}
	*h = gateway.RateHeader{Set: true, Limit: limit, Remaining: remaining, Reset: reset}
}

// Peek returns the rate-limit headers of p's layers as they stand, without
// counting a call: for the answers of other routes (DESIGN §11: every
// response to a principal with an rpm or tpm limit carries them).
func (l *Limiter) Peek(p *gateway.Principal) gateway.RateHeaders {
	t := l.ticket(p, "")
	if t.n == 0 {
		return t.Headers
	}
	cs := t.checks[:t.n]
	for i := range cs {
		cs[i].e.mu.Lock()
	}
	t.headers(l.now().UnixNano())
	for i := range cs {
		cs[i].e.mu.Unlock()
	}
	return t.Headers
}

// Done ends the call: it leaves the parallel count, its tokens enter the
// tpm windows, and its cost the spend of every layer (and of the key's
// model group); the day's usage is counted for reports. Calling it again
// does nothing.
func (t *Ticket) Done(u gateway.Usage, cost float64) {
	if t == nil || t.done {
		return
	}
	t.done = true
	if t.n == 0 {
		return
	}
	l := t.l
	now := l.now()
	ns := now.UnixNano()
	tok := u.Total()
	for i := range t.checks[:t.n] {
		c := &t.checks[i]
		c.e.mu.Lock()
		if c.parallel != nil && c.e.inflight > 0 {
			c.e.inflight--
		}
		if tok > 0 && c.tpm != nil {
			c.e.tpm.add(ns, tok)
		}
		c.e.roll(now, c.duration, c.anchor)
		c.e.local += cost
		crossed := c.soft != nil && !c.e.softCrossed && c.e.spend() >= *c.soft
		if crossed {
			c.e.softCrossed = true
		}
		if i == 0 {
			c.e.count(dailyKey{day: dayOf(now), team: t.team, user: t.user, model: t.model}, u, cost)
		}
		c.e.mu.Unlock()
		if crossed {
			l.log.Warn("soft budget crossed", "layer", c.layer, "id", t.logID(c.layer), "soft_budget", *c.soft)
			if l.obs != nil {
				l.obs.SoftBudget(c.layer)
			}
		}
	}
}

// logID names the layer of a soft budget alert: a key by its alias-free
// hash prefix, teams and users by id.
func (t *Ticket) logID(layer string) string {
	switch layer {
	case gateway.LayerTeam:
		return t.team
	case gateway.LayerUser:
		return t.user
	}
	if len(t.key) > 12 {
		return t.key[:12]
	}
	return t.key
}

// dayOf is the UTC day of t, as daily usage is kept.
func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
