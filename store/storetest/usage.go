package storetest

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

// RunUsage is the conformance suite of gateway.UsageStore. newStore must
// return a new, empty usage store for the test it is given.
func RunUsage(t *testing.T, newStore func(t *testing.T) gateway.UsageStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, u gateway.UsageStore)
	}{
		{"SpendAddsWithinAPeriod", testSpendAdds},
		{"NewerPeriodReplacesOlder", testSpendPeriods},
		{"OnlyChangedSpendAfterWatermark", testSpendWatermark},
		{"ReportGroupsAndOrders", testReport},
		{"ReportRefusesUnknownGroup", testReportGroup},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

var usageDay = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func syncUsage(t *testing.T, u gateway.UsageStore, d gateway.UsageDelta, since time.Time) gateway.UsageView {
	t.Helper()
	v, err := u.Sync(t.Context(), "replica-a", d, since)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if v.Replicas < 1 || v.Rank < 0 || v.Rank >= v.Replicas {
		t.Fatalf("Sync: replicas %d, rank %d", v.Replicas, v.Rank)
	}
	return v
}

// spendOf finds a layer's row in a view.
func spendOf(v gateway.UsageView, layer, id, model string) (gateway.SpendRow, bool) {
	for _, r := range v.Spend {
		if r.Layer == layer && r.ID == id && r.Model == model {
			return r, true
		}
	}
	return gateway.SpendRow{}, false
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func testSpendAdds(t *testing.T, u gateway.UsageStore) {
	p := usageDay.Add(3 * time.Hour)
	syncUsage(t, u, gateway.UsageDelta{Spend: []gateway.SpendRow{
		{Layer: gateway.LayerKey, ID: "k1", Period: p, USD: 0.25},
		{Layer: gateway.LayerKey, ID: "k1", Model: "gpt-4o", Period: p, USD: 0.1},
	}}, time.Time{})
	v := syncUsage(t, u, gateway.UsageDelta{Spend: []gateway.SpendRow{{Layer: gateway.LayerKey, ID: "k1", Period: p, USD: 0.5}}}, time.Time{})
	if r, ok := spendOf(v, gateway.LayerKey, "k1", ""); !ok || !near(r.USD, 0.75) || !r.Period.Equal(p) {
		t.Errorf("key spend = %+v, %t; want 0.75 from %v", r, ok, p)
	}
	if r, ok := spendOf(v, gateway.LayerKey, "k1", "gpt-4o"); !ok || !near(r.USD, 0.1) {
		t.Errorf("key model spend = %+v, %t; want 0.1, apart from the key's", r, ok)
	}
}

func testSpendPeriods(t *testing.T, u gateway.UsageStore) {
	p1, p2 := usageDay, usageDay.Add(24*time.Hour)
	syncUsage(t, u, gateway.UsageDelta{Spend: []gateway.SpendRow{{Layer: gateway.LayerTeam, ID: "t", Period: p1, USD: 3}}}, time.Time{})
	v := syncUsage(t, u, gateway.UsageDelta{Spend: []gateway.SpendRow{{Layer: gateway.LayerTeam, ID: "t", Period: p2, USD: 1}}}, time.Time{})
	if r, _ := spendOf(v, gateway.LayerTeam, "t", ""); !near(r.USD, 1) || !r.Period.Equal(p2) {
		t.Errorf("after a new period: %+v, want 1 from %v", r, p2)
	}
	// Spend of the ended period, handed over late, is dropped.
	v = syncUsage(t, u, gateway.UsageDelta{Spend: []gateway.SpendRow{{Layer: gateway.LayerTeam, ID: "t", Period: p1, USD: 5}}}, time.Time{})
	if r, _ := spendOf(v, gateway.LayerTeam, "t", ""); !near(r.USD, 1) || !r.Period.Equal(p2) {
		t.Errorf("after late spend of the old period: %+v, want 1 from %v", r, p2)
	}
}

func testSpendWatermark(t *testing.T, u gateway.UsageStore) {
	p := usageDay
	v := syncUsage(t, u, gateway.UsageDelta{Spend: []gateway.SpendRow{
		{Layer: gateway.LayerUser, ID: "a", Period: p, USD: 1},
		{Layer: gateway.LayerUser, ID: "b", Period: p, USD: 1},
	}}, time.Time{})
	if len(v.Spend) != 2 || v.Watermark.IsZero() {
		t.Fatalf("first sync: %d rows, watermark %v", len(v.Spend), v.Watermark)
	}
	// All rows again with a zero since; a later since may skip unchanged
	// rows but must return the changed one with its total.
	v2 := syncUsage(t, u, gateway.UsageDelta{Spend: []gateway.SpendRow{{Layer: gateway.LayerUser, ID: "b", Period: p, USD: 2}}}, v.Watermark)
	if r, ok := spendOf(v2, gateway.LayerUser, "b", ""); !ok || !near(r.USD, 3) {
		t.Errorf("changed row after the watermark = %+v, %t; want 3", r, ok)
	}
	if v2.Watermark.Before(v.Watermark) {
		t.Errorf("watermark went back: %v after %v", v2.Watermark, v.Watermark)
	}
	all := syncUsage(t, u, gateway.UsageDelta{}, time.Time{})
	if len(all.Spend) != 2 {
		t.Errorf("zero since: %d rows, want 2", len(all.Spend))
	}
}

func testReport(t *testing.T, u gateway.UsageStore) {
	d1, d2, d3 := usageDay, usageDay.Add(24*time.Hour), usageDay.Add(48*time.Hour)
	row := func(day time.Time, key, team, model string, req int64, usd float64) gateway.DailyUsage {
		return gateway.DailyUsage{Day: day, KeyID: key, TeamID: team, UserID: "u", Model: model,
			UsageCounts: gateway.UsageCounts{Requests: req, PromptTokens: 10 * req, CompletionTokens: req, USD: usd}}
	}
	syncUsage(t, u, gateway.UsageDelta{Daily: []gateway.DailyUsage{
		row(d1, "k1", "t1", "gpt-4o", 2, 0.5),
		row(d2, "k2", "t1", "gpt-4o", 1, 2),
		row(d2, "k1", "t2", "mini", 4, 0.25),
		row(d3, "k3", "t3", "gpt-4o", 9, 9), // outside the range asked
	}}, time.Time{})
	// The same day's row again adds up.
	syncUsage(t, u, gateway.UsageDelta{Daily: []gateway.DailyUsage{row(d1, "k1", "t1", "gpt-4o", 1, 0.5)}}, time.Time{})
	got, err := u.Report(t.Context(), d1, d2, "team")
	if err != nil {
		t.Fatal(err)
	}
	want := []gateway.SpendReportRow{
		{Group: "t1", Requests: 4, PromptTokens: 40, CompletionTokens: 4, Spend: 3},
		{Group: "t2", Requests: 4, PromptTokens: 40, CompletionTokens: 4, Spend: 0.25},
	}
	if !slices.EqualFunc(got, want, func(a, b gateway.SpendReportRow) bool {
		return a.Group == b.Group && a.Requests == b.Requests && a.PromptTokens == b.PromptTokens && a.CompletionTokens == b.CompletionTokens && near(a.Spend, b.Spend)
	}) {
		t.Errorf("Report(team) = %+v, want %+v", got, want)
	}
	got, err = u.Report(t.Context(), d2, d3, "model")
	if err != nil || len(got) != 2 || got[0].Group != "gpt-4o" || !near(got[0].Spend, 11) || got[1].Group != "mini" {
		t.Errorf("Report(model) = %+v, %v; want gpt-4o 11 then mini", got, err)
	}
}

func testReportGroup(t *testing.T, u gateway.UsageStore) {
	if _, err := u.Report(t.Context(), usageDay, usageDay, "nope"); err == nil {
		t.Error("Report(group_by nope) succeeded")
	}
}
