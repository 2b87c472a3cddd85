//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
)

const spaDir = "../examples/spa"

// serveSPA serves the example page on a loopback port of its own, so that its fetch to
// token-service (another port) is really cross-origin.
func serveSPA(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(spaDir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("the example's npm packages are missing: run scripts/test, which runs npm ci in %s", spaDir)
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("/usr/bin/chromium is missing: run scripts/test, which installs Debian's chromium")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(spaDir)), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

type pageOutcome struct {
	State         string   `json:"state"`
	Error         string   `json:"error"`
	ConsoleErrors []string `json:"consoleErrors"`
	PageErrors    []string `json:"pageErrors"`
}

// openPage drives Chromium through the page with query and returns what the page showed. Console
// errors not matching expected fail the test, as do uncaught page errors.
func openPage(t *testing.T, pageURL string, query url.Values, expectState string, expected *regexp.Regexp) pageOutcome {
	t.Helper()
	artifacts, _ := filepath.Abs("artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	query.Set("autojoin", "1")
	cmd := exec.Command("node", "test/browser.mjs")
	cmd.Dir = spaDir
	cmd.Env = append(os.Environ(), "PAGE_URL="+pageURL+"/?"+query.Encode(), "EXPECT="+expectState,
		"SCREENSHOT="+filepath.Join(artifacts, "spa-"+strings.ReplaceAll(filepath.Base(t.Name()), "/", "-")+".png"))
	start := time.Now()
	out, err := cmd.Output()
	var outcome pageOutcome
	if jsonErr := json.Unmarshal(out, &outcome); jsonErr != nil {
		stderr := ""
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = string(exit.Stderr)
		}
		t.Fatalf("the browser run printed no outcome: %v %v\n%s\n%s", err, jsonErr, out, stderr)
	}
	t.Logf("browser case took %s: %+v", time.Since(start).Round(time.Millisecond), outcome)
	if err != nil || outcome.State != expectState {
		t.Fatalf("page state %q, want %q; error shown: %q", outcome.State, expectState, outcome.Error)
	}
	for _, e := range outcome.PageErrors {
		t.Errorf("uncaught page error: %s", e)
	}
	for _, e := range outcome.ConsoleErrors {
		if expected == nil || !expected.MatchString(e) {
			t.Errorf("unexpected console error: %s", e)
		}
	}
	return outcome
}

func TestSPAInRealBrowser(t *testing.T) {
	page := serveSPA(t)
	allowed := startService(t, "CORS_ORIGINS="+page, "ALLOWED_AGENT_NAMES=notetaker")
	elsewhere := startService(t, "CORS_ORIGINS=https://other.example.com")

	t.Run("joins and publishes a microphone", func(t *testing.T) {
		room := uniqueRoom(t)
		openPage(t, page, url.Values{"tokenUrl": {allowed.URL}, "room": {room}, "identity": {"browser-mic"}, "publish": {"1"}}, "published", nil)
		p := participant(t, room, "browser-mic", func(p *livekit.ParticipantInfo) bool {
			return len(p.Tracks) == 1 && p.Tracks[0].Type == livekit.TrackType_AUDIO
		})
		if p.Tracks[0].Source != livekit.TrackSource_MICROPHONE {
			t.Errorf("track source %v, want MICROPHONE", p.Tracks[0].Source)
		}
	})

	t.Run("joins through livekit-client's TokenSource.endpoint()", func(t *testing.T) {
		room := uniqueRoom(t)
		openPage(t, page, url.Values{"tokenUrl": {allowed.URL}, "source": {"endpoint"}, "room": {room}, "identity": {"browser-ts"}, "publish": {"1"}}, "published", nil)
		participant(t, room, "browser-ts", func(p *livekit.ParticipantInfo) bool { return len(p.Tracks) == 1 })
	})

	// The reply carries dispatches and room_config_applied, which TokenSourceResponse does not
	// know: the SDK ignores them and joins.
	t.Run("TokenSource.endpoint() with an agent, whose reply carries dispatch fields", func(t *testing.T) {
		room := uniqueRoom(t)
		openPage(t, page, url.Values{"tokenUrl": {allowed.URL}, "source": {"endpoint"}, "room": {room}, "identity": {"browser-agent"},
			"agent": {"notetaker"}, "publish": {"0"}}, "connected", nil)
		participant(t, room, "browser-agent", nil)
		// The agent reached the service only through the TokenSource request's room_config.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, err := lksdk.NewAgentDispatchServiceClient(lk.HTTPURL, lkKey, lkSecret).ListDispatch(ctx, &livekit.ListAgentDispatchRequest{Room: room})
		if err != nil || len(res.GetAgentDispatches()) != 1 || res.GetAgentDispatches()[0].GetAgentName() != "notetaker" {
			t.Fatalf("dispatches of the room the page joined: %v %v", res, err)
		}
	})

	t.Run("CORS blocks another origin", func(t *testing.T) {
		outcome := openPage(t, page, url.Values{"tokenUrl": {elsewhere.URL}, "room": {uniqueRoom(t)}, "identity": {"blocked"}},
			"error", regexp.MustCompile(`CORS policy|ERR_FAILED`))
		if !strings.Contains(outcome.Error, "Could not reach the token service") || !strings.Contains(outcome.Error, "CORS_ORIGINS") {
			t.Errorf("the page does not say what went wrong: %q", outcome.Error)
		}
	})

	t.Run("a canPublish:false token cannot publish", func(t *testing.T) {
		room := uniqueRoom(t)
		outcome := openPage(t, page, url.Values{"tokenUrl": {allowed.URL}, "room": {room}, "identity": {"browser-listener"},
			"publish": {"1"}, "canPublish": {"false"}}, "publish-refused", regexp.MustCompile(`insufficient permissions`))
		if !strings.Contains(outcome.Error, "refused") || !strings.Contains(outcome.Error, "does not allow publishing") {
			t.Errorf("the page does not say the publish was refused: %q", outcome.Error)
		}
		if p := participant(t, room, "browser-listener", nil); len(p.Tracks) != 0 || p.Permission.CanPublish {
			t.Errorf("LiveKit lists tracks %v, canPublish %v", p.Tracks, p.Permission.CanPublish)
		}
	})
}
