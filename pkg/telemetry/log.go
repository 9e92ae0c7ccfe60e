package telemetry

import (
	"fmt"
	"log/slog"
	"reflect"
)

// logBridge is the type of slog's built-in default handler, which writes
// through the log package ("2006/01/02 15:04:05 INFO msg k=v" on stderr):
// the services log through it, so their format is kept by leaving it in place
// and setting only its level.
var logBridge = reflect.TypeOf(slog.Default().Handler())

// parseLevel reads EVENTSTREAM_LOG_LEVEL as the eventstream CLI does
// (slog's names: debug, info, warn, error); empty means info.
func parseLevel(v string) (slog.Level, error) {
	if v == "" {
		return slog.LevelInfo, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return 0, fmt.Errorf("EVENTSTREAM_LOG_LEVEL=%q: want debug, info, warn or error", v)
	}
	return l, nil
}

// setLogLevel makes the default logger drop records below level when it is
// still slog's built-in handler. A program that installed a handler of its
// own (the eventstream CLI, whose handler already has this level; a test
// capturing logs) keeps it untouched: with a custom handler,
// slog.SetLogLoggerLevel would instead relabel the log package's output.
func setLogLevel(level slog.Level) {
	if reflect.TypeOf(slog.Default().Handler()) == logBridge {
		slog.SetLogLoggerLevel(level)
	}
}
