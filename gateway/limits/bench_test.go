package limits_test

import (
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/limits"
	"github.com/regate/gateway/store/memory"
)

// BenchmarkAdmit is one call's admission and accounting with every limit
// kind on the key, its team and its user (far above the load), and with no
// limits (spend and daily usage are counted either way): what the request
// path spends on limits, allocations included.
func BenchmarkAdmit(b *testing.B) {
	big, budget := int64(1<<40), 1e12
	all := gateway.Limits{MaxBudget: &budget, BudgetDuration: "30d", RPMLimit: &big, TPMLimit: &big, MaxParallelRequests: &big}
	for _, bc := range []struct {
		name string
		lim  gateway.Limits
	}{{"limits", all}, {"none", gateway.Limits{}}} {
		b.Run(bc.name, func(b *testing.B) {
			l := limits.New(limits.Config{Shared: memory.NewUsage()})
			p := principal(bc.lim, bc.lim, bc.lim)
			p.Key.CreatedAt, p.Team.CreatedAt, p.User.CreatedAt = time.Now(), time.Now(), time.Now()
			u := gateway.Usage{PromptTokens: 100, CompletionTokens: 50, Reported: true}
			b.ReportAllocs()
			for b.Loop() {
				t, err := l.Admit(p, "gpt-4o")
				if err != nil {
					b.Fatal(err)
				}
				t.Done(u, 0.001)
			}
		})
	}
}
