// Package logging builds the service's zerolog logger, whose output can never carry a token,
// a secret or an Authorization value.
package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
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

// sensitiveWords mark the JSON keys whose string values are always replaced, whatever else the
// key says (livekit_api_secret, access_token, Authorization, ...). One list, here.
var sensitiveWords = []string{"token", "secret", "authorization", "password", "cookie", "bearer"}

// sensitiveKeys finds those keys' string values, to replace them.
var sensitiveKeys = regexp.MustCompile(`"([A-Za-z0-9_]*(?i:` + strings.Join(sensitiveWords, "|") + `)[A-Za-z0-9_]*)":"(?:[^"\\]|\\.)*"`)

// jwtShaped matches anything that looks like a JWT or a piece of one: a base64url JSON object
// header ("eyJ") followed by more base64url, with or without its other segments.
var jwtShaped = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}`)

const redacted = "[redacted]"

// redactor rewrites each JSON log event before it reaches its writer. A zerolog hook can only add
// fields, not change ones already written, hence a writer. Lines with nothing to redact (almost
// all of them) pass untouched after one allocation-free scan; the regular expressions run only on
// the rare line that needs them, since running them on every line was most of a request's cost.
type redactor struct{ next io.Writer }

func (r redactor) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte("eyJ")) && !hasSensitiveKey(p) {
		return r.next.Write(p)
	}
	clean := sensitiveKeys.ReplaceAll(p, []byte(`"$1":"`+redacted+`"`))
	clean = jwtShaped.ReplaceAll(clean, []byte(redacted))
	if _, err := r.next.Write(clean); err != nil {
		return 0, err
	}
	return len(p), nil
}

// hasSensitiveKey reports whether a JSON line has a key containing one of sensitiveWords. Inside a
// JSON string every quote is escaped, so an unescaped closing quote followed by ':' ends a key.
func hasSensitiveKey(line []byte) bool {
	inString, start := false, 0
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case !inString && c == '"':
			inString, start = true, i+1
		case inString && c == '\\':
			i++ // the escaped character cannot end the string
		case inString && c == '"':
			inString = false
			if i+1 < len(line) && line[i+1] == ':' && isSensitive(line[start:i]) {
				return true
			}
		}
	}
	return false
}

func isSensitive(key []byte) bool {
	for _, word := range sensitiveWords {
		if containsFold(key, word) {
			return true
		}
	}
	return false
}

// containsFold is an ASCII case-insensitive bytes.Contains for a lowercase word, without the
// allocation of lowering the key.
func containsFold(s []byte, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		match := true
		for j := 0; j < len(word) && match; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			match = c == word[j]
		}
		if match {
			return true
		}
	}
	return false
}

// Printf is a logger for libraries that print their own lines (go-redis's SetLogger): each
// line becomes a warning of ours, with the component named, so it honours LOG_LEVEL, the JSON
// format and the redaction instead of going to stderr as plain text.
type Printf struct {
	Log       zerolog.Logger
	Component string
}

// Printf logs one library line.
func (p Printf) Printf(_ context.Context, format string, args ...any) {
	p.Log.Warn().Str("component", p.Component).Msg(fmt.Sprintf(format, args...))
}
