// Package freeport picks loopback ports for the servers that tests and the load driver start.
package freeport

import "net"

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
