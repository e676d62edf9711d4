package hub

import (
	"context"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

// WebSocketHandler serves the client protocol at /connection/websocket.
type WebSocketHandler struct {
	node *Node
	opts *websocket.AcceptOptions
}

// HandlerOptions configure the WebSocket endpoint.
type HandlerOptions struct {
	// AllowedOrigins are host patterns (path.Match syntax, such as
	// "*.example.com") whose pages may open sockets. Empty allows only pages
	// of the same host; connections without an Origin header (mobile apps,
	// servers) are always accepted.
	AllowedOrigins []string
}

// NewWebSocketHandler returns the handler for the node's client connections.
func NewWebSocketHandler(n *Node, o HandlerOptions) *WebSocketHandler {
	return &WebSocketHandler{node: n, opts: &websocket.AcceptOptions{
		OriginPatterns: o.AllowedOrigins,
		// Offered by the protobuf builds of the SDKs; JSON clients send no
		// subprotocol.
		Subprotocols:         []string{ProtobufSubprotocol},
		CompressionMode:      n.cfg.Compression.mode(),
		CompressionThreshold: n.cfg.CompressionThreshold,
	}}
}

func (h *WebSocketHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := h.node
	release := onSocketEnd(r.Context())
	served := false
	defer func() {
		if !served {
			release()
		}
	}()
	if !n.acquireConn() {
		http.Error(w, "node is shutting down", http.StatusServiceUnavailable)
		return
	}
	conn, err := websocket.Accept(w, r, h.opts)
	if err != nil {
		n.clientWG.Done()
		// Accept has written the HTTP error (bad handshake or origin).
		n.log.Debug("websocket accept failed", "err", err, "remote", r.RemoteAddr)
		return
	}
	enc := encodingJSON
	// The SDKs ask for Protobuf with the subprotocol (browsers) or the
	// query parameter (clients that cannot set a subprotocol).
	if conn.Subprotocol() == ProtobufSubprotocol || r.URL.Query().Get("cf_protocol") == "protobuf" {
		enc = encodingProtobuf
	}
	c := n.newClient(conn, enc)
	// The connection gets a goroutine of its own and the handler returns:
	// the HTTP server's goroutine, its request and its deep stack are
	// let go, and an idle connection keeps only what it needs (the
	// socket's buffers, its state and one shallow stack). The node's
	// wait group owns the goroutine.
	served = true
	go func() {
		defer n.clientWG.Done()
		defer release()
		c.serve()
	}()
}

type socketEndKey struct{}

// OnSocketEnd returns a context for a WebSocket upgrade request under which
// the handler calls fn once: when the socket it opens has closed, or when
// it returns without opening one. The handler returns as soon as the
// socket is set up, so middleware that holds something for the socket's
// life (a per-address slot) releases it through fn, not when the handler
// returns.
func OnSocketEnd(ctx context.Context, fn func()) context.Context {
	return context.WithValue(ctx, socketEndKey{}, fn)
}

func onSocketEnd(ctx context.Context) func() {
	fn, _ := ctx.Value(socketEndKey{}).(func())
	if fn == nil {
		return func() {}
	}
	var once sync.Once
	return func() { once.Do(fn) }
}
