package logging_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/token-service/token-service/internal/testenv/logtest"
	"github.com/token-service/token-service/internal/testenv/wait"
	"github.com/token-service/token-service/logging"
)

const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"

func TestRedactsSensitiveKeysAndJWTs(t *testing.T) {
	for _, console := range []bool{false, true} {
		var out bytes.Buffer
		log := logging.New(&out, zerolog.TraceLevel, console)
		log.Info().Str("token", "opaque-value-1").Msg("a")
		log.Info().Str("livekit_api_secret", "opaque-value-2").Msg("b")
		log.Info().Str("Authorization", `Bearer opaque-value-3 with \"quotes\"`).Msg("c")
		log.Info().Str("access_token", "opaque-value-4").Msg("d")
		log.Error().Err(errors.New("cannot parse " + jwt + " at all")).Msg("e")
		log.Debug().Msg("header only: " + strings.Split(jwt, ".")[0])
		log.Info().Str("room", "kept").Int("status", 200).Msg("kept line")
		got := out.String()
		for _, leak := range []string{"opaque-value", jwt, "c2lnbmF0dXJl", "eyJzdWIiOiJhIn0", "eyJhbGciOiJIUzI1NiJ9"} {
			if strings.Contains(got, leak) {
				t.Errorf("console=%v: %q leaked:\n%s", console, leak, got)
			}
		}
		if strings.Count(got, "[redacted]") < 6 || !strings.Contains(got, "kept") {
			t.Errorf("console=%v: unexpected output:\n%s", console, got)
		}
	}
}

func TestBufferedWriterHoldsLinesUntilClose(t *testing.T) {
	var out logtest.Buffer
	w := logging.NewBufferedWriter(&out, time.Hour) // no periodic flush during this test
	log := logging.New(w, zerolog.InfoLevel, false)
	log.Info().Msg("held")
	if strings.Contains(out.String(), "held") {
		t.Error("written at once: not buffered")
	}
	if err := w.Close(); err != nil || !strings.Contains(out.String(), "held") {
		t.Errorf("Close did not flush: %v %q", err, out.String())
	}
}

func TestBufferedWriterFlushesPeriodically(t *testing.T) {
	var out logtest.Buffer
	w := logging.NewBufferedWriter(&out, 20*time.Millisecond)
	defer w.Close()
	log := logging.New(w, zerolog.InfoLevel, false)
	log.Info().Msg("soon")
	wait.For(t, 2*time.Second, func() error {
		if !strings.Contains(out.String(), "soon") {
			return errors.New("not flushed yet")
		}
		return nil
	})
}

func TestPerSecond(t *testing.T) {
	var p logging.PerSecond
	var first int64
	for { // a first line surely within one second
		p = logging.PerSecond{}
		first = time.Now().Unix()
		if !p.Allow() {
			t.Fatal("the first line was held back")
		}
		if time.Now().Unix() == first {
			break
		}
	}
	var allowed bool
	for {
		// Allow reads the clock itself: only a call with the same second on both sides of it
		// was surely in the first second.
		before := time.Now().Unix()
		allowed = p.Allow()
		if after := time.Now().Unix(); before != first || after != first {
			break
		}
		if allowed {
			t.Fatal("a second line in the same second")
		}
	}
	// The call that saw the second turn may have been the next second's line already.
	if !allowed && !p.Allow() {
		t.Fatal("no line in the next second")
	}
}
