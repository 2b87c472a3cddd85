package handlers_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/rs/zerolog"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/handlers"
	"github.com/token-service/token-service/internal/app"
	"github.com/token-service/token-service/logging"
)

const benchOrigin = "https://app.example.com"

// productionRouter is the router as production runs it: strict mode, service keys, CORS with a
// list, rate limiting on (with a limit out of reach), request ids and the access log at info.
func productionRouter(b *testing.B, logOut io.Writer) http.Handler {
	b.Helper()
	cfg, err := config.Load([]string{"APP_ENV=production", "LIVEKIT_API_KEY=" + testKey, "LIVEKIT_API_SECRET=" + testSecret,
		"LIVEKIT_WS_URL=" + testWSURL, "SERVICE_API_KEYS=" + serviceKey1, "CORS_ORIGINS=" + benchOrigin,
		"RATE_LIMIT_MAX_REQUESTS=1000000000", "LOG_LEVEL=info"})
	if err != nil {
		b.Fatal(err)
	}
	log := logging.New(logOut, zerolog.InfoLevel, false)
	deps, closeDeps, err := app.New(b.Context(), cfg, "bench", log, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = closeDeps() })
	return handlers.NewRouter(deps)
}

// nullWriter is a ResponseWriter that keeps only the status, so that allocs/op counts the router
// and not the harness (httptest's recorder clones the header map on every reply).
type nullWriter struct {
	header http.Header
	status int
}

func (w *nullWriter) Header() http.Header         { return w.header }
func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nullWriter) WriteHeader(status int)      { w.status = status }

func benchRoute(b *testing.B, router http.Handler, path, body string, service bool) {
	b.Helper()
	// One request, its body rewound each time: what a server allocates to read a request is the
	// same for the floor, and is measured by the load test instead.
	reader := strings.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, path, reader)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", benchOrigin)
	if service {
		req.Header.Set("Authorization", "Bearer "+serviceKey1)
	}
	w := &nullWriter{header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		reader.Reset(body)
		req.Body = io.NopCloser(reader)
		clear(w.header)
		router.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("%s: %d", path, w.status)
		}
	}
}

// BenchmarkRouter is each endpoint through the whole production middleware stack. Compare its
// ns/op and allocs/op with BenchmarkLibrary's: the difference is everything we add.
func BenchmarkRouter(b *testing.B) {
	logFile, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	issuer := productionRouter(b, io.Discard)
	tok := func() string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(`{"room":"r","identity":"a"}`))
		req.Header.Set("Content-Type", "application/json")
		issuer.ServeHTTP(rec, req)
		return strings.Split(strings.Split(rec.Body.String(), `"token":"`)[1], `"`)[0]
	}()
	join := `{"room":"standup","identity":"alice","name":"Alice","ttl_seconds":3600,"grants":{"canPublish":true,"canSubscribe":true}}`
	for _, sink := range []struct {
		name string
		out  io.Writer
	}{{"log=discard", io.Discard}, {"log=file", logFile}} {
		router := productionRouter(b, sink.out)
		b.Run("POST /token/"+sink.name, func(b *testing.B) { benchRoute(b, router, "/token", join, false) })
		b.Run("POST /token/agent/"+sink.name, func(b *testing.B) {
			benchRoute(b, router, "/token/agent", `{"room":"standup","agent_id":"media-bridge"}`, true)
		})
		b.Run("POST /token/verify/"+sink.name, func(b *testing.B) {
			benchRoute(b, router, "/token/verify", fmt.Sprintf(`{"token":%q}`, tok), true)
		})
	}
}

// BenchmarkLibrary is the bare livekit/protocol work each endpoint cannot avoid.
func BenchmarkLibrary(b *testing.B) {
	b.Run("ToJWT", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			video := &auth.VideoGrant{RoomJoin: true, Room: "standup"}
			video.SetCanPublish(true)
			video.SetCanSubscribe(true)
			video.SetCanPublishData(true)
			video.SetCanUpdateOwnMetadata(false)
			at := auth.NewAccessToken(testKey, testSecret).SetIdentity("alice").SetName("Alice").
				SetValidFor(time.Hour).SetVideoGrant(video)
			if _, err := at.ToJWT(); err != nil {
				b.Fatal(err)
			}
		}
	})
	at := auth.NewAccessToken(testKey, testSecret).SetIdentity("alice").SetValidFor(time.Hour).
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: "standup"})
	tok, err := at.ToJWT()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ParseAPIToken+Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, err := auth.ParseAPIToken(tok)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := v.Verify(testSecret); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTokenAroundAFlood is POST /token on one router before and after 300,000 distinct
// clients have each sent it a request: compare the two ns/op (the CPU per token after a flood
// within 10% of before; docs/performance.md). The after run reports the heap the flood left.
func BenchmarkTokenAroundAFlood(b *testing.B) {
	router := productionRouter(b, io.Discard)
	join := `{"room":"standup","identity":"alice","name":"Alice","ttl_seconds":3600}`
	b.Run("before", func(b *testing.B) { benchRoute(b, router, "/token", join, false) })
	before := heapInUse()
	w := &nullWriter{header: http.Header{}}
	for i := range 300_000 {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(`{}`))
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:4711", i>>16, i>>8&255, i&255)
		req.Header.Set("Content-Type", "application/json")
		clear(w.header)
		router.ServeHTTP(w, req)
	}
	grew := heapInUse() - before
	b.Run("after", func(b *testing.B) {
		benchRoute(b, router, "/token", join, false)
		b.ReportMetric(float64(grew)/(1<<20), "MiB-kept-by-flood")
	})
}
