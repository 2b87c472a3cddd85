// Package freeport picks loopback ports for the servers that tests and benchmarks start.
package freeport

import (
	"net"
	"testing"
)

// Pick returns a port on 127.0.0.1 that was free a moment ago, for network "tcp" or "udp".
// Another process may take it before the caller listens; on a test machine that is rare enough.
func Pick(network string) (int, error) {
	if network == "udp" {
		conn, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		return conn.LocalAddr().(*net.UDPAddr).Port, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// TCP is Pick("tcp") for a test, which it fails when no port can be had.
func TCP(tb testing.TB) int {
	tb.Helper()
	port, err := Pick("tcp")
	if err != nil {
		tb.Fatal(err)
	}
	return port
}
