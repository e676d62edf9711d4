package hub

import (
	"net/http"

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
	if !n.acquireConn() {
		http.Error(w, "node is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer n.clientWG.Done()
	conn, err := websocket.Accept(w, r, h.opts)
	if err != nil {
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
	c.serve()
}
