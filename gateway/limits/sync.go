package limits

import (
	"context"
	"fmt"
	"time"

	"github.com/regate/gateway/gateway"
)

// dailyKey identifies a key's daily usage row.
type dailyKey struct {
	day               time.Time
	team, user, model string
}

// count adds one call to the entity's daily usage. The caller holds mu.
func (e *entity) count(k dailyKey, u gateway.Usage, cost float64) {
	e.add(k, gateway.UsageCounts{Requests: 1, PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, USD: cost})
}

// add adds n to the entity's daily usage of k. The caller holds mu.
func (e *entity) add(k dailyKey, n gateway.UsageCounts) {
	if e.daily == nil {
		e.daily = make(map[dailyKey]*gateway.UsageCounts)
	}
	c := e.daily[k]
	if c == nil {
		c = &gateway.UsageCounts{}
		e.daily[k] = c
	}
	c.Add(n)
}

// Sync hands this replica's usage over to the shared store and takes the
// shared totals back. A failed sync keeps the usage for the next one.
func (l *Limiter) Sync(ctx context.Context) error {
	if l.shared == nil {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	var d gateway.UsageDelta
	type flushed struct {
		e     *entity
		daily map[dailyKey]*gateway.UsageCounts
	}
	var taken []flushed
	l.entities.Range(func(k, v any) bool {
		ek, e := k.(entKey), v.(*entity)
		e.mu.Lock()
		if e.local != 0 && e.started {
			d.Spend = append(d.Spend, gateway.SpendRow{Layer: ek.layer, ID: ek.id, Model: ek.model, Period: time.Unix(0, e.period).UTC(), USD: e.local})
			e.flushing += e.local
			e.local = 0
		}
		f := flushed{e: e, daily: e.daily}
		e.daily = nil
		e.mu.Unlock()
		for dk, c := range f.daily {
			d.Daily = append(d.Daily, gateway.DailyUsage{Day: dk.day, KeyID: ek.id, TeamID: dk.team, UserID: dk.user, Model: dk.model, UsageCounts: *c})
		}
		taken = append(taken, f)
		return true
	})
	v, err := l.shared.Sync(ctx, l.replica, d, l.since)
	if err != nil {
		// Give everything back: the next sync hands it over.
		for _, f := range taken {
			f.e.mu.Lock()
			f.e.local += f.e.flushing
			f.e.flushing = 0
			for dk, c := range f.daily {
				f.e.add(dk, *c)
			}
			f.e.mu.Unlock()
		}
		return fmt.Errorf("limits: sync: %w", err)
	}
	// The totals include what this sync handed over.
	for _, f := range taken {
		f.e.mu.Lock()
		f.e.global += f.e.flushing
		f.e.flushing = 0
		f.e.mu.Unlock()
	}
	for _, r := range v.Spend {
		e := l.entity(entKey{layer: r.Layer, id: r.ID, model: r.Model})
		p := r.Period.UnixNano()
		e.mu.Lock()
		// A period this replica has not reached yet (or a layer it meets
		// for the first time) is entered; an ended one is ignored.
		e.enter(p)
		if p == e.period {
			e.global = r.USD
		}
		e.mu.Unlock()
	}
	if v.Replicas < 1 {
		v.Replicas = 1
	}
	l.view.Store(&view{replicas: int64(v.Replicas), rank: int64(v.Rank)})
	l.since = v.Watermark
	return nil
}

// Report sums usage by group (DESIGN §11), after handing this replica's
// usage over.
func (l *Limiter) Report(ctx context.Context, start, end time.Time, groupBy string) ([]gateway.SpendReportRow, error) {
	if err := l.Sync(ctx); err != nil {
		return nil, err
	}
	return l.shared.Report(ctx, start, end, groupBy)
}
