package hub

import (
	"encoding/binary"
	"encoding/json"

	"github.com/centrifugal/protocol"
	"github.com/coder/websocket"
)

// ProtobufSubprotocol is the WebSocket subprotocol with which the protobuf
// builds of the Centrifugo SDKs ask for the Protobuf encoding. The query
// parameter cf_protocol=protobuf asks for it too.
const ProtobufSubprotocol = "centrifuge-protobuf"

// encoding is the wire encoding of one connection's protocol messages, fixed
// at the WebSocket handshake.
type encoding uint8

const (
	// encodingJSON: text messages holding replies separated by '\n'.
	encodingJSON encoding = iota
	// encodingProtobuf: binary messages holding replies, each prefixed
	// with its length as a varint.
	encodingProtobuf
)

func (e encoding) String() string {
	if e == encodingProtobuf {
		return "protobuf"
	}
	return "json"
}

func (e encoding) protoType() protocol.Type {
	if e == encodingProtobuf {
		return protocol.TypeProtobuf
	}
	return protocol.TypeJSON
}

func (e encoding) messageType() websocket.MessageType {
	if e == encodingProtobuf {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// encodeReply encodes one reply without framing; the writer adds the
// separator or length prefix when it batches replies into a message.
func (e encoding) encodeReply(r *protocol.Reply) ([]byte, error) {
	if e == encodingProtobuf {
		return protocol.DefaultProtobufReplyEncoder.Encode(r)
	}
	return protocol.DefaultJsonReplyEncoder.Encode(r)
}

// pingFrame is the protocol's ping: an empty reply, "{}" in JSON and zero
// bytes (a zero length prefix on the wire) in Protobuf.
func (e encoding) pingFrame() []byte {
	if e == encodingProtobuf {
		return protobufPing
	}
	return jsonPing
}

var (
	jsonPing     = []byte("{}")
	protobufPing = []byte{}
)

// appendFrame appends one encoded reply to a message being batched: JSON
// replies are separated by '\n', Protobuf replies are length-prefixed.
func (e encoding) appendFrame(dst []byte, first bool, f []byte) []byte {
	if e == encodingProtobuf {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		return append(dst, f...)
	}
	if !first {
		dst = append(dst, '\n')
	}
	return append(dst, f...)
}

// jsonString encodes b as a JSON string. Delta-capable JSON subscriptions
// carry publication data this way (as Centrifugo does), because a fossil
// delta is not JSON; centrifuge-js JSON.parse-s full data from the string
// and applies deltas to the string's UTF-8 bytes.
func jsonString(b []byte) []byte {
	out, err := json.Marshal(string(b))
	if err != nil {
		// Marshalling a string cannot fail.
		panic(err)
	}
	return out
}
