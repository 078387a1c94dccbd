package gateway

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a duration as the admin API and gateway_settings write
// them (DESIGN §10.15): a number and a unit, "30s", "10m", "1h", "30d". It
// also accepts everything time.ParseDuration does ("1h30m", "50ms"). Negative
// durations, and more days than a time.Duration holds (106751), are
// refused. Budget periods (Limits.BudgetDuration,
// ModelBudget.TimePeriod) are written this way.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" {
		n, err := strconv.ParseFloat(days, 64)
		// !(n >= 0) refuses NaN too; a time.Duration holds about 292
		// years, and converting a larger float is undefined.
		if err != nil || !(n >= 0) || n*float64(24*time.Hour) >= math.MaxInt64 {
			return 0, fmt.Errorf("invalid duration %q: want a number and a unit (s, m, h, d)", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want a number and a unit (s, m, h, d)", s)
	}
	if d < 0 {
		return 0, errors.New("negative duration " + strconv.Quote(s))
	}
	return d, nil
}
