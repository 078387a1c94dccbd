package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Log formats for NewLogger.
const (
	FormatJSON = "json"
	FormatText = "text"
)

// NewLogger returns a logger writing to w in format (FormatJSON, the
// default, or FormatText for people at terminals) at level ("debug",
// "info" (the default), "warn" or "error").
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if level != "" {
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "", FormatJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case FormatText:
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: use json or text", format)
	}
}
