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
// "info" (the default), "warn" or "error"). When w is a *LogWriter,
// warnings and errors are written at once, with the lines before them.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if level != "" {
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "", FormatJSON:
		h = slog.NewJSONHandler(w, opts)
	case FormatText:
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: use json or text", format)
	}
	if lw, ok := w.(*LogWriter); ok {
		h = flushOnWarn{h, lw}
	}
	return slog.New(h), nil
}
