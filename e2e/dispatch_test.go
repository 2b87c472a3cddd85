//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"google.golang.org/protobuf/proto"

	"github.com/token-service/token-service/internal/testenv/livekittest"
	"github.com/token-service/token-service/internal/testenv/redistest"
	"github.com/token-service/token-service/internal/testenv/wait"
)

// agentName is the one agent these tests dispatch; the built-in policy lets any caller dispatch
// it through ALLOWED_AGENT_NAMES.
const agentName = "a1"

// registerWorker registers an agent worker for name over LiveKit's /agent websocket, as the
// agents SDKs do (server-sdk-go has no worker API), and accepts every job LiveKit offers it
// until the test ends. It returns once LiveKit has confirmed the registration: LiveKit offers a
// job only to workers registered when the dispatch is made, and never again.
func registerWorker(t *testing.T, lks *livekittest.Server, name string) {
	t.Helper()
	at := auth.NewAccessToken(lkKey, lkSecret).SetVideoGrant(&auth.VideoGrant{Agent: true}).SetValidFor(time.Hour)
	jwt, err := at.ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := dialer.Dial(lks.URL+"/agent", http.Header{"Authorization": {"Bearer " + jwt}})
	if err != nil {
		t.Fatalf("worker websocket: %v (%v)", err, resp)
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	send := func(m *livekit.WorkerMessage) error {
		raw, err := proto.Marshal(m)
		if err != nil {
			return err
		}
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		return conn.WriteMessage(websocket.BinaryMessage, raw)
	}
	if err := send(&livekit.WorkerMessage{Message: &livekit.WorkerMessage_Register{Register: &livekit.RegisterWorkerRequest{
		Type: livekit.JobType_JT_ROOM, AgentName: name, Version: "e2e",
	}}}); err != nil {
		t.Fatalf("register worker: %v", err)
	}
	registered := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		for {
			_, raw, err := conn.ReadMessage()
			if err != nil {
				if first {
					registered <- err
				}
				return
			}
			var m livekit.ServerMessage
			if err := proto.Unmarshal(raw, &m); err != nil {
				continue
			}
			switch msg := m.Message.(type) {
			case *livekit.ServerMessage_Register:
				if first {
					first = false
					registered <- nil
				}
			case *livekit.ServerMessage_Availability:
				job := msg.Availability.GetJob()
				_ = send(&livekit.WorkerMessage{Message: &livekit.WorkerMessage_Availability{Availability: &livekit.AvailabilityResponse{
					JobId: job.GetId(), Available: true, ParticipantIdentity: "agent-" + name + "-" + job.GetId(),
				}}})
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	select {
	case err := <-registered:
		if err != nil {
			t.Fatalf("worker registration: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LiveKit did not confirm the worker's registration within 5 s")
	}
}

// dispatchLiveKit is a livekit-server of the test's own with a worker for agentName registered.
func dispatchLiveKit(t *testing.T) *livekittest.Server {
	t.Helper()
	lks, err := livekittest.StartWithConfig(lkKey, lkSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lks.Stop)
	registerWorker(t, lks, agentName)
	return lks
}

// agentDispatches lists room's dispatches of agentName and their jobs.
func agentDispatches(t *testing.T, lks *livekittest.Server, room string) (ids []string, jobs int, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := lksdk.NewAgentDispatchServiceClient(lks.HTTPURL, lkKey, lkSecret).ListDispatch(ctx, &livekit.ListAgentDispatchRequest{Room: room})
	if err != nil {
		return nil, 0, err
	}
	for _, d := range res.GetAgentDispatches() {
		if d.GetAgentName() == agentName {
			ids = append(ids, d.GetId())
			jobs += len(d.GetState().GetJobs())
		}
	}
	return ids, jobs, nil
}

// wantOneJob waits until room has one dispatch of agentName with one job, then watches for
// 5 s more (job state can lag that long) that no second dispatch or job appears. It returns
// the dispatch's id.
func wantOneJob(t *testing.T, lks *livekittest.Server, room string) string {
	t.Helper()
	var id string
	wait.For(t, 10*time.Second, func() error {
		ids, jobs, err := agentDispatches(t, lks, room)
		if err != nil {
			return err
		}
		if len(ids) != 1 || jobs != 1 {
			return fmt.Errorf("room %s: dispatches %v with %d jobs, want one with one job", room, ids, jobs)
		}
		id = ids[0]
		return nil
	})
	watch := time.NewTicker(250 * time.Millisecond)
	defer watch.Stop()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); <-watch.C {
		ids, jobs, err := agentDispatches(t, lks, room)
		if err == nil && (len(ids) != 1 || jobs != 1) {
			t.Fatalf("room %s: dispatches %v with %d jobs appeared, want one with one job", room, ids, jobs)
		}
	}
	return id
}

func dispatchRequest(room string) map[string]any {
	return map[string]any{"room": room, "identity": "caller-" + fmt.Sprint(time.Now().UnixNano()),
		"room_config": map[string]any{"agents": []any{map[string]any{"agent_name": agentName, "metadata": `{"from":"e2e"}`}}}}
}

// dispatchOf returns the one dispatch entry of a token reply.
func dispatchOf(t *testing.T, reply map[string]any) map[string]any {
	t.Helper()
	list, _ := reply["dispatches"].([]any)
	if len(list) != 1 {
		t.Fatalf("dispatches in the reply: %v", reply)
	}
	return list[0].(map[string]any)
}

func createRoom(t *testing.T, lks *livekittest.Server, room string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := lksdk.NewRoomServiceClient(lks.HTTPURL, lkKey, lkSecret).CreateRoom(ctx, &livekit.CreateRoomRequest{Name: room, EmptyTimeout: 300}); err != nil {
		t.Fatal(err)
	}
}

// TestDispatchModesOnLiveKit: a room that does not exist is dispatched by the token; a room made
// by CreateRoom gets the dispatch from the service, once; a second request finds it.
func TestDispatchModesOnLiveKit(t *testing.T) {
	lks := dispatchLiveKit(t)
	svc := startService(t, "LIVEKIT_WS_URL="+lks.URL, "ALLOWED_AGENT_NAMES="+agentName)

	t.Run("room does not exist", func(t *testing.T) {
		room := uniqueRoom(t)
		status, _, reply := svc.post(t, "/token", dispatchRequest(room))
		if status != http.StatusOK || dispatchOf(t, reply)["mode"] != "token" || reply["room_config_applied"] != true {
			t.Fatalf("%d %v", status, reply)
		}
		joinAt(t, lks.URL, reply["token"].(string))
		wantOneJob(t, lks, room)
	})

	t.Run("room made by CreateRoom", func(t *testing.T) {
		room := uniqueRoom(t)
		createRoom(t, lks, room)
		status, _, reply := svc.post(t, "/token", dispatchRequest(room))
		d := dispatchOf(t, reply)
		if status != http.StatusOK || d["mode"] != "explicit" || d["dispatch_id"] == nil || reply["room_config_applied"] != false {
			t.Fatalf("%d %v", status, reply)
		}
		joinAt(t, lks.URL, reply["token"].(string))
		if id := wantOneJob(t, lks, room); id != d["dispatch_id"] {
			t.Fatalf("the room's dispatch is %s, the reply said %v", id, d["dispatch_id"])
		}

		// The same agent again, through the TokenSource endpoint: it is there already.
		status, _, again := svc.post(t, "/connection-details", map[string]any{"room_name": room,
			"room_config": map[string]any{"agents": []any{map[string]any{"agent_name": agentName}}}})
		if a := dispatchOf(t, again); status != http.StatusOK || a["mode"] != "existing" || a["dispatch_id"] != d["dispatch_id"] || again["room_config_applied"] != false {
			t.Fatalf("%d %v", status, again)
		}
		wantOneJob(t, lks, room)
	})
}

// TestConcurrentDispatchAcrossReplicas: two replicas on one Redis, eight requests at once for
// one existing room: one dispatch, one job.
func TestConcurrentDispatchAcrossReplicas(t *testing.T) {
	redis, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(redis.Stop)
	lks := dispatchLiveKit(t)
	env := []string{"LIVEKIT_WS_URL=" + lks.URL, "ALLOWED_AGENT_NAMES=" + agentName, "REDIS_URL=" + redis.URL,
		"LIVEKIT_API_TIMEOUT_MS=5000"} // a race-instrumented binary on 2 busy cores
	replicas := []*service{startService(t, env...), startService(t, env...)}
	room := uniqueRoom(t)
	createRoom(t, lks, room)

	modes := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			status, _, reply := replicas[i%2].post(t, "/token", dispatchRequest(room))
			mu.Lock()
			defer mu.Unlock()
			if status != http.StatusOK {
				modes[fmt.Sprint(status)]++
				return
			}
			if list, _ := reply["dispatches"].([]any); len(list) == 1 {
				modes[list[0].(map[string]any)["mode"].(string)]++
			}
		})
	}
	wg.Wait()
	t.Logf("modes of 8 concurrent requests: %v", modes)
	if modes["explicit"] != 1 || modes["existing"] != 7 {
		t.Errorf("modes %v, want one explicit and seven existing", modes)
	}
	wantOneJob(t, lks, room)
}

// TestDispatchUnconfirmedWhenLiveKitIsDown: with LiveKit's server stopped, the token is still
// issued, its agent unconfirmed, and the service says so in its log and metrics.
func TestDispatchUnconfirmedWhenLiveKitIsDown(t *testing.T) {
	lks, err := livekittest.StartWithConfig(lkKey, lkSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	svc := startService(t, "LIVEKIT_WS_URL="+lks.URL, "ALLOWED_AGENT_NAMES="+agentName, "LIVEKIT_API_TIMEOUT_MS=200")
	lks.Stop()
	status, _, reply := svc.post(t, "/token", dispatchRequest(uniqueRoom(t)))
	if status != http.StatusOK || reply["token"] == nil || dispatchOf(t, reply)["mode"] != "unconfirmed" {
		t.Fatalf("%d %v", status, reply)
	}
	if _, known := reply["room_config_applied"]; known {
		t.Fatalf("room_config_applied without an answer from LiveKit: %v", reply)
	}
	wait.For(t, 2*time.Second, func() error {
		if !strings.Contains(svc.logs.String(), "agent dispatch unconfirmed") {
			return fmt.Errorf("no log line for the unconfirmed dispatch")
		}
		return nil
	})
}
