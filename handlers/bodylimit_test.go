package handlers_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
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
