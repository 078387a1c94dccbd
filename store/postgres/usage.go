package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regate/gateway/gateway"
)

// ReplicaTTL is how long a replica counts as live after its last sync.
const ReplicaTTL = 3 * time.Second

// watermarkSlack re-reads spend changed shortly before the last watermark:
// a sync that began before it may have committed after it.
const watermarkSlack = 2 * time.Second

// Usage is the PostgreSQL gateway.UsageStore: spend per budget period,
// daily usage and live replicas, shared by every replica on the database.
// Get it from a started Store.
type Usage struct{ s *Store }

var _ gateway.UsageStore = Usage{}

// Usage returns the store's usage state.
func (s *Store) Usage() Usage { return Usage{s} }

// Sync implements gateway.UsageStore in one transaction.
func (u Usage) Sync(ctx context.Context, replica string, d gateway.UsageDelta, since time.Time) (gateway.UsageView, error) {
	ctx, cancel := u.s.bound(ctx)
	defer cancel()
	pool := u.s.pool
	if pool == nil {
		return gateway.UsageView{}, errNotStarted
	}
	var v gateway.UsageView
	err := u.s.retry(ctx, func() error {
		v = gateway.UsageView{}
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue(`INSERT INTO gateway_replicas (id, seen_at) VALUES ($1, now())
				ON CONFLICT (id) DO UPDATE SET seen_at = now()`, replica)
			if len(d.Spend) > 0 {
				layers, ids, models := make([]string, len(d.Spend)), make([]string, len(d.Spend)), make([]string, len(d.Spend))
				periods, usd := make([]time.Time, len(d.Spend)), make([]float64, len(d.Spend))
				for i, r := range d.Spend {
					layers[i], ids[i], models[i], periods[i], usd[i] = r.Layer, r.ID, r.Model, r.Period, r.USD
				}
				b.Queue(`INSERT INTO gateway_spend AS s (layer, id, model, period_start, spend, updated_at)
					SELECT l, i, m, p, x, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[]) AS t(l, i, m, p, x)
					ON CONFLICT (layer, id, model) DO UPDATE SET
						spend = CASE
							WHEN excluded.period_start > s.period_start THEN excluded.spend
							WHEN excluded.period_start = s.period_start THEN s.spend + excluded.spend
							ELSE s.spend END,
						period_start = greatest(s.period_start, excluded.period_start),
						updated_at = now()`, layers, ids, models, periods, usd)
			}
			if len(d.Daily) > 0 {
				n := len(d.Daily)
				days, keys, teams, users, groups := make([]time.Time, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
				reqs, prompt, completion, usd := make([]int64, n), make([]int64, n), make([]int64, n), make([]float64, n)
				for i, r := range d.Daily {
					days[i], keys[i], teams[i], users[i], groups[i] = r.Day, r.KeyID, r.TeamID, r.UserID, r.Model
					reqs[i], prompt[i], completion[i], usd[i] = r.Requests, r.PromptTokens, r.CompletionTokens, r.USD
				}
				b.Queue(`INSERT INTO gateway_usage_daily AS d (day, key_id, team_id, user_id, model_group, requests, prompt_tokens, completion_tokens, spend)
					SELECT (t.dy AT TIME ZONE 'UTC')::date, t.k, t.tm, t.u, t.g, t.r, t.p, t.c, t.x
					FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[], $9::float8[]) AS t(dy, k, tm, u, g, r, p, c, x)
					ON CONFLICT (day, key_id, team_id, user_id, model_group) DO UPDATE SET
						requests = d.requests + excluded.requests,
						prompt_tokens = d.prompt_tokens + excluded.prompt_tokens,
						completion_tokens = d.completion_tokens + excluded.completion_tokens,
						spend = d.spend + excluded.spend`, days, keys, teams, users, groups, reqs, prompt, completion, usd)
			}
			br := tx.SendBatch(ctx, b)
			for range b.Len() {
				if _, err := br.Exec(); err != nil {
					br.Close()
					return err
				}
			}
			if err := br.Close(); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT id FROM gateway_replicas WHERE seen_at > now() - $1::interval ORDER BY id`, ReplicaTTL.String())
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			v.Replicas = len(ids)
			for i, id := range ids {
				if id == replica {
					v.Rank = i
				}
			}
			var q string
			args := []any{}
			if since.IsZero() {
				q = `SELECT layer, id, model, period_start, spend, now() FROM gateway_spend`
			} else {
				q = `SELECT layer, id, model, period_start, spend, now() FROM gateway_spend WHERE updated_at > $1`
				args = append(args, since.Add(-watermarkSlack))
			}
			rows, err = tx.Query(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var r gateway.SpendRow
				if err := rows.Scan(&r.Layer, &r.ID, &r.Model, &r.Period, &r.USD, &v.Watermark); err != nil {
					return err
				}
				v.Spend = append(v.Spend, r)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if v.Watermark.IsZero() {
				return tx.QueryRow(ctx, `SELECT now()`).Scan(&v.Watermark)
			}
			return nil
		})
	})
	if err != nil {
		return gateway.UsageView{}, fmt.Errorf("sync usage: %w", translate(ctx, err))
	}
	return v, nil
}

// Leave implements gateway.UsageStore.
func (u Usage) Leave(ctx context.Context, replica string) error {
	ctx, cancel := u.s.bound(ctx)
	defer cancel()
	if u.s.pool == nil {
		return errNotStarted
	}
	if _, err := u.s.pool.Exec(ctx, `DELETE FROM gateway_replicas WHERE id = $1 OR seen_at < now() - interval '1 hour'`, replica); err != nil {
		return fmt.Errorf("leave: %w", translate(ctx, err))
	}
	return nil
}

// reportColumns are the group_by values of a spend report.
var reportColumns = map[string]string{"key": "key_id", "team": "team_id", "user": "user_id", "model": "model_group"}

// Report implements gateway.UsageStore.
func (u Usage) Report(ctx context.Context, start, end time.Time, groupBy string) ([]gateway.SpendReportRow, error) {
	ctx, cancel := u.s.bound(ctx)
	defer cancel()
	col, ok := reportColumns[groupBy]
	if !ok {
		return nil, fmt.Errorf("group_by %q: want team, key, user or model", groupBy)
	}
	if u.s.pool == nil {
		return nil, errNotStarted
	}
	// col is one of reportColumns, never client text.
	rows, err := u.s.pool.Query(ctx, `SELECT `+col+`, sum(requests)::int8, sum(prompt_tokens)::int8, sum(completion_tokens)::int8, sum(spend)
		FROM gateway_usage_daily WHERE day BETWEEN $1::date AND $2::date
		GROUP BY 1 ORDER BY 5 DESC, 1`, start.UTC().Format(time.DateOnly), end.UTC().Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("spend report: %w", translate(ctx, err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gateway.SpendReportRow, error) {
		var x gateway.SpendReportRow
		err := r.Scan(&x.Group, &x.Requests, &x.PromptTokens, &x.CompletionTokens, &x.Spend)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("spend report: %w", translate(ctx, err))
	}
	if out == nil {
		out = []gateway.SpendReportRow{}
	}
	return out, nil
}
