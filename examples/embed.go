// Package examples holds the demo configuration the gateway binary serves when
// no --config is given.
package examples

import _ "embed"

// Config is examples/config.yaml: the demo configuration with mock
// deployments only, so it works with no network and no provider key.
//
//go:embed config.yaml
var Config []byte
