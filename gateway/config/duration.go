package config

import (
	"time"

	"github.com/regate/gateway/gateway"
)

// ParseDuration parses a duration as gateway_settings writes them: see
// gateway.ParseDuration.
func ParseDuration(s string) (time.Duration, error) { return gateway.ParseDuration(s) }
