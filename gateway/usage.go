package gateway

import (
	"context"
	"time"
)

// UsageStore is the usage and spend state replicas share (DESIGN §11):
// store/memory keeps it in the process, store/postgres in the database;
// package limits syncs with it off the request path.
type UsageStore interface {
	// Sync records replica as alive, adds d (spend per period, daily
	// usage) to the shared totals, and returns the live replicas with
	// replica's rank among them, and the spend of every layer changed
	// since since (every layer when since is zero) with the watermark to
	// pass as since next time.
	Sync(ctx context.Context, replica string, d UsageDelta, since time.Time) (UsageView, error)
	// Leave records that replica stopped, so that the others take its
	// share of the rate limits at once.
	Leave(ctx context.Context, replica string) error
	// Report sums the daily usage from start to end (UTC days, both
	// included) by groupBy: "key", "team", "user" or "model".
	Report(ctx context.Context, start, end time.Time, groupBy string) ([]SpendReportRow, error)
}

// SpendRow is one layer's spend in the period that began at Period.
type SpendRow struct {
	Layer, ID, Model string
	Period           time.Time
	USD              float64
}

// UsageCounts is usage summed over calls.
type UsageCounts struct {
	Requests, PromptTokens, CompletionTokens int64
	USD                                      float64
}

// Add adds n to c.
func (c *UsageCounts) Add(n UsageCounts) {
	c.Requests += n.Requests
	c.PromptTokens += n.PromptTokens
	c.CompletionTokens += n.CompletionTokens
	c.USD += n.USD
}

// DailyUsage is one day's usage of a key, team, user and model group.
type DailyUsage struct {
	Day                          time.Time // midnight UTC
	KeyID, TeamID, UserID, Model string
	UsageCounts
}

// UsageDelta is what a replica hands over at a sync.
type UsageDelta struct {
	Spend []SpendRow
	Daily []DailyUsage
}

// UsageView is what a sync returns.
type UsageView struct {
	// Replicas is the number of live replicas (this one included), Rank
	// this replica's place among them, from 0.
	Replicas, Rank int
	// Spend holds the shared totals of the layers changed since the
	// watermark asked for.
	Spend []SpendRow
	// Watermark is the since of the next sync.
	Watermark time.Time
}

// SpendReportRow is one group of a spend report (DESIGN §11).
type SpendReportRow struct {
	Group            string  `json:"group"`
	Requests         int64   `json:"requests"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	Spend            float64 `json:"spend"`
}
