// Package delayproxy is a TCP proxy on 127.0.0.1 that adds a delay, changeable while it runs, to
// every chunk it forwards in each direction, as a network's latency would: each chunk goes out
// the delay after it came in, and chunks in flight do not wait for each other (a pipeline of
// commands and its replies take one delay each way, not one per chunk). This kernel has no
// netem, and tests and the load driver need a slow Redis that is not a dead one.
package delayproxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards connections from Addr to a target.
type Proxy struct {
	Addr   string
	target string
	delay  atomic.Int64 // nanoseconds, each way
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

// Start listens on a free loopback port and forwards to target with delay added each way.
func Start(target string, delay time.Duration) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.delay.Store(int64(delay))
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// SetDelay changes the delay for every chunk forwarded from now on.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Close stops listening, cuts every connection and waits for the forwarding to end.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client, server)
		p.wg.Add(2)
		go p.forward(server, client)
		go p.forward(client, server)
	}
}

func (p *Proxy) track(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
}

// forward copies from src to dst, each chunk the delay after it was read; closing one side ends
// both.
func (p *Proxy) forward(dst, src net.Conn) {
	defer p.wg.Done()
	type chunk struct {
		data []byte
		due  time.Time
	}
	// Bounded: a reader far ahead of a slow writer waits, as a full network buffer would.
	chunks := make(chan chunk, 64)
	written := make(chan struct{})
	go func() {
		defer close(written)
		defer dst.Close()
		for c := range chunks {
			time.Sleep(time.Until(c.due)) // the delay is this proxy's whole purpose
			if _, err := dst.Write(c.data); err != nil {
				src.Close()
				for range chunks { // let the reader finish
				}
				return
			}
		}
	}()
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			chunks <- chunk{data: buf[:n], due: time.Now().Add(time.Duration(p.delay.Load()))}
		}
		if err != nil { // EOF or a cut connection alike: the other direction ends with it
			close(chunks)
			<-written
			src.Close()
			return
		}
	}
}
