package memory

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/regate/gateway/gateway"
)

// Usage keeps spend and daily usage in this process (gateway.UsageStore):
// one replica, nothing durable, as the in-memory store warns.
type Usage struct {
	mu      sync.Mutex
	version int64
	spend   map[spendKey]*spendTotal
	daily   map[dailyKey]*gateway.UsageCounts
}

type spendKey struct{ layer, id, model string }

type spendTotal struct {
	period  time.Time
	usd     float64
	version int64
}

type dailyKey struct {
	day                    time.Time
	key, team, user, model string
}

var _ gateway.UsageStore = (*Usage)(nil)

// NewUsage returns an empty usage store.
func NewUsage() *Usage {
	return &Usage{spend: map[spendKey]*spendTotal{}, daily: map[dailyKey]*gateway.UsageCounts{}}
}

// Sync implements gateway.UsageStore. The watermark is a change counter
// carried in a time.
func (u *Usage) Sync(_ context.Context, _ string, d gateway.UsageDelta, since time.Time) (gateway.UsageView, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.version++
	for _, r := range d.Spend {
		k := spendKey{r.Layer, r.ID, r.Model}
		t := u.spend[k]
		switch {
		case t == nil || r.Period.After(t.period):
			u.spend[k] = &spendTotal{period: r.Period, usd: r.USD, version: u.version}
		case r.Period.Equal(t.period):
			t.usd += r.USD
			t.version = u.version
		}
		// Spend of a period that has ended is dropped.
	}
	for _, r := range d.Daily {
		k := dailyKey{r.Day, r.KeyID, r.TeamID, r.UserID, r.Model}
		c := u.daily[k]
		if c == nil {
			c = &gateway.UsageCounts{}
			u.daily[k] = c
		}
		c.Add(r.UsageCounts)
	}
	v := gateway.UsageView{Replicas: 1, Watermark: time.Unix(0, u.version)}
	after := since.UnixNano()
	for k, t := range u.spend {
		if since.IsZero() || t.version > after {
			v.Spend = append(v.Spend, gateway.SpendRow{Layer: k.layer, ID: k.id, Model: k.model, Period: t.period, USD: t.usd})
		}
	}
	return v, nil
}

// Leave implements gateway.UsageStore; there are no other replicas.
func (u *Usage) Leave(context.Context, string) error { return nil }

// Report implements gateway.UsageStore.
func (u *Usage) Report(_ context.Context, start, end time.Time, groupBy string) ([]gateway.SpendReportRow, error) {
	group, err := reportGroup(groupBy)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	sums := map[string]*gateway.SpendReportRow{}
	for k, c := range u.daily {
		if k.day.Before(start) || k.day.After(end) {
			continue
		}
		g := group(k)
		r := sums[g]
		if r == nil {
			r = &gateway.SpendReportRow{Group: g}
			sums[g] = r
		}
		r.Requests += c.Requests
		r.PromptTokens += c.PromptTokens
		r.CompletionTokens += c.CompletionTokens
		r.Spend += c.USD // a report row names the spend "spend"
	}
	u.mu.Unlock()
	out := make([]gateway.SpendReportRow, 0, len(sums))
	for _, r := range sums {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Spend != out[j].Spend {
			return out[i].Spend > out[j].Spend
		}
		return out[i].Group < out[j].Group
	})
	return out, nil
}

func reportGroup(groupBy string) (func(dailyKey) string, error) {
	switch groupBy {
	case "key":
		return func(k dailyKey) string { return k.key }, nil
	case "team":
		return func(k dailyKey) string { return k.team }, nil
	case "user":
		return func(k dailyKey) string { return k.user }, nil
	case "model":
		return func(k dailyKey) string { return k.model }, nil
	}
	return nil, fmt.Errorf("group_by %q: want team, key, user or model", groupBy)
}
