package config

import (
	"time"

	"github.com/regate/gateway/gateway"
)

// ParseDuration parses a duration as the admin API and gateway_settings write
// them (DESIGN §10.15): a number and a unit, "30s", "10m", "1h", "30d". It
// also accepts everything time.ParseDuration does ("1h30m", "50ms"). Negative
// durations are refused. It is gateway.ParseDuration.
func ParseDuration(s string) (time.Duration, error) { return gateway.ParseDuration(s) }
