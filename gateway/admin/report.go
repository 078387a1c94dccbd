package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/regate/gateway/gateway"
)

// OpSpendReport is /global/spend/report.
const OpSpendReport = "spend.report"

// SpendReporter sums daily usage for /global/spend/report
// (*limits.Limiter implements it).
type SpendReporter interface {
	Report(ctx context.Context, start, end time.Time, groupBy string) ([]gateway.SpendReportRow, error)
}

// spendReport serves GET /global/spend/report?start_date=…&end_date=…
// &group_by=team|key|user|model (DESIGN §11): requests, tokens and spend
// per group over the days asked (UTC, both included), highest spend first.
func (a *API) spendReport(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	if a.reports == nil {
		return nil, &gateway.BadRequestError{Message: "Spend is not recorded by this gateway."}
	}
	q := r.URL.Query()
	day := func(name string) (time.Time, error) {
		v := q.Get(name)
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return time.Time{}, &gateway.BadRequestError{Param: name, Message: name + " must be a date like 2026-12-01."}
		}
		return t, nil
	}
	start, err := day("start_date")
	if err != nil {
		return nil, err
	}
	end, err := day("end_date")
	if err != nil {
		return nil, err
	}
	if end.Before(start) {
		return nil, &gateway.BadRequestError{Param: "end_date", Message: "end_date is before start_date."}
	}
	group := q.Get("group_by")
	if group == "" {
		group = "team"
	}
	switch group {
	case "team", "key", "user", "model":
	default:
		return nil, &gateway.BadRequestError{Param: "group_by", Message: "group_by must be team, key, user or model."}
	}
	rows, err := a.reports.Report(ctx, start, end, group)
	if err != nil {
		return nil, err
	}
	if rows == nil {
		rows = []gateway.SpendReportRow{}
	}
	return rows, nil
}
