package redisengine

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"github.com/livehub/livehub/hub"
)

// Messages on a channel's pub/sub channel start with a kind byte. A
// publication message is "p<offset>:<epoch>:<body>": the publish script
// prepends the offset and epoch it assigned to the body encoded here, so the
// body is encoded once in Go and stored as is in the history stream.
const (
	kindPublication = 'p'
	kindJoin        = 'j'
	kindLeave       = 'l'
)

// codecVersion leads every encoded publication so the format can change
// while nodes of two versions share a Redis.
const codecVersion = 1

var errMalformed = errors.New("malformed message")

// encodePublication encodes the publication without its offset, which the
// publish script assigns. Nil and empty byte slices and maps are told apart
// so a publication reads back exactly as it was published.
func encodePublication(p *hub.Publication) []byte {
	n := 16 + len(p.Data)
	if p.Info != nil {
		n += 16 + len(p.Info.ClientID) + len(p.Info.UserID) + len(p.Info.ConnInfo) + len(p.Info.ChanInfo)
	}
	for k, v := range p.Tags {
		n += 4 + len(k) + len(v)
	}
	b := make([]byte, 0, n)
	b = append(b, codecVersion)
	b = binary.AppendVarint(b, p.Time)
	b = appendBytes(b, p.Data)
	if p.Info == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendClientInfo(b, p.Info)
	}
	if p.Tags == nil {
		b = binary.AppendUvarint(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(p.Tags))+1)
		for k, v := range p.Tags {
			b = appendString(b, k)
			b = appendString(b, v)
		}
	}
	if p.Priority != hub.PriorityNormal {
		// Optional trailing field: normal publications keep the exact
		// bytes older nodes read.
		b = append(b, byte(p.Priority))
	}
	return b
}

func decodePublication(b []byte) (*hub.Publication, error) {
	if len(b) == 0 || b[0] != codecVersion {
		return nil, errMalformed
	}
	d := decoder{b: b[1:]}
	p := &hub.Publication{}
	p.Time = d.varint()
	p.Data = d.bytes()
	if d.byte() == 1 {
		p.Info = d.clientInfo()
	}
	if n := d.uvarint(); n > 0 {
		n--
		if n > uint64(len(d.b)) { // each tag takes at least two bytes
			return nil, errMalformed
		}
		p.Tags = make(map[string]string, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			k := d.string()
			p.Tags[k] = d.string()
		}
	}
	if d.err == nil && len(d.b) == 1 {
		p.Priority = hub.Priority(d.byte())
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errMalformed
	}
	return p, nil
}

func encodeClientInfoMessage(kind byte, info *hub.ClientInfo) []byte {
	if info == nil {
		info = &hub.ClientInfo{}
	}
	b := make([]byte, 0, 8+len(info.ClientID)+len(info.UserID)+len(info.ConnInfo)+len(info.ChanInfo))
	b = append(b, kind, codecVersion)
	return appendClientInfo(b, info)
}

func decodeClientInfo(b []byte) (*hub.ClientInfo, error) {
	if len(b) == 0 || b[0] != codecVersion {
		return nil, errMalformed
	}
	d := decoder{b: b[1:]}
	info := d.clientInfo()
	if d.err != nil || len(d.b) != 0 {
		return nil, errMalformed
	}
	return info, nil
}

// parsePublicationMessage splits "<offset>:<epoch>:<body>" (the kind byte
// already removed). Epochs are hex, so the first two colons are separators.
func parsePublicationMessage(s string) (hub.StreamPosition, string, error) {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return hub.StreamPosition{}, "", errMalformed
	}
	j := strings.IndexByte(s[i+1:], ':')
	if j < 0 {
		return hub.StreamPosition{}, "", errMalformed
	}
	offset, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return hub.StreamPosition{}, "", errMalformed
	}
	return hub.StreamPosition{Offset: offset, Epoch: s[i+1 : i+1+j]}, s[i+2+j:], nil
}

func appendClientInfo(b []byte, info *hub.ClientInfo) []byte {
	b = appendString(b, info.ClientID)
	b = appendString(b, info.UserID)
	b = appendBytes(b, info.ConnInfo)
	return appendBytes(b, info.ChanInfo)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendBytes writes len+1, keeping zero for nil.
func appendBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(v))+1)
	return append(b, v...)
}

// decoder reads what the append functions wrote; the first error sticks and
// later reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errMalformed, nil }

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) take(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.take(d.uvarint())) }

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	return d.take(n - 1)
}

func (d *decoder) clientInfo() *hub.ClientInfo {
	return &hub.ClientInfo{
		ClientID: d.string(),
		UserID:   d.string(),
		ConnInfo: d.bytes(),
		ChanInfo: d.bytes(),
	}
}
