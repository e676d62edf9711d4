package hub

import (
	"fmt"

	"github.com/coder/websocket"
)

// Compression is the WebSocket permessage-deflate policy of a node.
// Compression is only used with clients that offer it in the handshake.
type Compression uint8

const (
	// CompressionNoContextTakeover compresses each message on its own: a
	// little memory per message while it is written, nothing kept per
	// connection. The default.
	CompressionNoContextTakeover Compression = iota
	// CompressionOff never negotiates compression.
	CompressionOff
	// CompressionContextTakeover keeps a 32 KiB sliding window per
	// connection and direction, so repeated content compresses far
	// better, at the cost of that memory on every connection.
	CompressionContextTakeover
)

// ParseCompression reads "off", "no_context_takeover" or "context_takeover".
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "off":
		return CompressionOff, nil
	case "no_context_takeover":
		return CompressionNoContextTakeover, nil
	case "context_takeover":
		return CompressionContextTakeover, nil
	}
	return 0, fmt.Errorf("compression %q: want off, no_context_takeover or context_takeover", s)
}

// String returns the name ParseCompression reads.
func (c Compression) String() string {
	switch c {
	case CompressionOff:
		return "off"
	case CompressionNoContextTakeover:
		return "no_context_takeover"
	case CompressionContextTakeover:
		return "context_takeover"
	}
	return fmt.Sprintf("Compression(%d)", uint8(c))
}

func (c Compression) mode() websocket.CompressionMode {
	switch c {
	case CompressionOff:
		return websocket.CompressionDisabled
	case CompressionContextTakeover:
		return websocket.CompressionContextTakeover
	}
	return websocket.CompressionNoContextTakeover
}
