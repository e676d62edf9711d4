package main

import (
	"net"
	"net/http"
	"time"
)

// sourceClients returns one HTTP client per source address, each dialing
// from that address, with up to conns connections to a host (zero: no
// limit). Client i uses source i % len, for WebSocket dials and REST calls
// alike; an upgraded WebSocket leaves the transport's pool and its count.
// On Linux the local port is picked per destination (dialControl).
func sourceClients(sources []string, conns int) []*http.Client {
	out := make([]*http.Client, len(sources))
	for i, s := range sources {
		d := &net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.ParseIP(s)},
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
			Control:   dialControl,
		}
		out[i] = &http.Client{Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     30 * time.Second,
		}}
	}
	return out
}

// closeIdle drops the idle connections of clients.
func closeIdle(clients []*http.Client) {
	for _, c := range clients {
		c.CloseIdleConnections()
	}
}
