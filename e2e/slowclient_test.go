//go:build e2e

package e2e

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// A client that sends its headers a byte a second is cut off by the read-header timeout, so slow
// clients cannot hold connections open.
func TestSlowHeadersAreCutOff(t *testing.T) {
	t.Parallel()
	svc := startService(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(svc.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	request := "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: " + strings.Repeat("a", 60)
	for i := 0; i < len(request); i++ {
		if _, err := conn.Write([]byte{request[i]}); err != nil {
			break // the server has closed the connection
		}
		if time.Since(start) > 12*time.Second {
			t.Fatal("still accepting header bytes after 12 s")
		}
		time.Sleep(time.Second)
	}
	cutOff := time.Since(start)
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		// net/http may answer 408 before closing; the connection must then be closed.
		if _, err := io.ReadAll(conn); err != nil {
			t.Fatalf("connection not closed: %v", err)
		}
	}
	if cutOff < 4*time.Second || cutOff > 8*time.Second {
		t.Errorf("cut off after %s, want about the 5 s read-header timeout", cutOff.Round(time.Second))
	}
}
