// Package logging builds the service's zerolog logger, whose output can never carry a token,
// a secret or an Authorization value.
package logging

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/rs/zerolog"
)

// zerolog's formats are process-wide, so they are set once here rather than per logger.
func init() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.DurationFieldUnit = time.Millisecond
	zerolog.DurationFieldInteger = false
}

// New returns a logger at level writing JSON lines to out, or readable console lines when console
// is set (development). Every line passes through the redactor first.
func New(out io.Writer, level zerolog.Level, console bool) zerolog.Logger {
	sink := out
	if console {
		sink = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly, NoColor: !isTerminal(out)}
	}
	return zerolog.New(redactor{next: sink}).Level(level).With().Timestamp().Logger()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// sensitiveKeys names the JSON keys whose string values are always replaced, whatever else the
// key says (livekit_api_secret, access_token, ...). One list, here.
var sensitiveKeys = regexp.MustCompile(`"([A-Za-z0-9_]*(?i:token|secret|authorization|password|cookie|api_key_value|bearer)[A-Za-z0-9_]*)":"(?:[^"\\]|\\.)*"`)

// jwtShaped matches anything that looks like a JWT or a piece of one: a base64url JSON object
// header ("eyJ") followed by more base64url, with or without its other segments.
var jwtShaped = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}`)

const redacted = "[redacted]"

// redactor rewrites each JSON log event before it reaches its writer. A zerolog hook can only add
// fields, not change ones already written, hence a writer. Lines with nothing to redact (almost
// all of them) are passed on untouched after two cheap scans.
type redactor struct{ next io.Writer }

func (r redactor) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte("eyJ")) && !sensitiveKeys.Match(p) {
		return r.next.Write(p)
	}
	clean := sensitiveKeys.ReplaceAll(p, []byte(`"$1":"`+redacted+`"`))
	clean = jwtShaped.ReplaceAll(clean, []byte(redacted))
	if _, err := r.next.Write(clean); err != nil {
		return 0, err
	}
	return len(p), nil
}
