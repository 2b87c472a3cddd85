package handlers_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
)

// hugeAgentBody is 2 MiB whose first member is unknown: the decoder meets the mistake long before
// the limit, and the reply must still be the 413.
func hugeAgentBody() string {
	return `{"identity":"x","room":"r","agent_id":"a","metadata":"` + strings.Repeat("m", 2<<20) + `"}`
}

// A body over 256 KiB is a 413 whatever it holds, whether its length is announced
// (Content-Length, refused before reading) or not (chunked, refused on the bytes read).
func TestBodyOverTheLimitIs413WhateverItHolds(t *testing.T) {
	srv := newServer(t)
	srv.post(t, "/token/agent", hugeAgentBody()).wantError(t, http.StatusRequestEntityTooLarge, "payload_too_large", "")

	for name, body := range map[string]string{
		"unknown field first": hugeAgentBody(),
		"not JSON at all":     "x" + strings.Repeat("y", 300<<10),
		"valid but large":     `{"room":"r","agent_id":"a","metadata":"` + strings.Repeat("m", 300<<10) + `"}`,
	} {
		t.Run("chunked "+name, func(t *testing.T) {
			// io.MultiReader hides the length, so the client sends the body chunked.
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/token/agent", io.MultiReader(strings.NewReader(body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var reply struct{ Error string }
			if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || reply.Error != "payload_too_large" {
				t.Fatalf("got %d %q, want 413 payload_too_large", resp.StatusCode, reply.Error)
			}
		})
	}
}

// A client that announces up to 1 MiB reads its 413, not a reset: the body is read before the
// reply, so that net/http does not close a connection the client is still writing to (issue 23:
// a 257 KiB POST /token got "broken pipe" from Go's own client). Small socket buffers stand in
// for a real network, where the body cannot all be in flight before the reply.
func TestOverLimitBodyGetsItsReplyNotAReset(t *testing.T) {
	router, _, _ := newRouter(t)
	small := func(_, _ string, c syscall.RawConn) error {
		var err error
		_ = c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
			if err == nil {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4<<10)
			}
		})
		return err
	}
	ln, err := (&net.ListenConfig{Control: small}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(router)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Control: small}).DialContext}}
	frame := `{"room":"r","identity":"a","metadata":""}`
	for _, size := range []int{257 << 10, 512 << 10, 1 << 20} {
		body := strings.Replace(frame, `""`, `"`+strings.Repeat("m", size-len(frame))+`"`, 1)
		for range 5 {
			resp, err := client.Post(srv.URL+"/token", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatalf("%d bytes: %v", size, err)
			}
			var reply struct{ Error string }
			err = json.NewDecoder(resp.Body).Decode(&reply)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || reply.Error != "payload_too_large" {
				t.Fatalf("%d bytes: %d %q %v, want 413 payload_too_large", size, resp.StatusCode, reply.Error, err)
			}
		}
	}
}
