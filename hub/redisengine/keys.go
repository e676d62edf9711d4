package redisengine

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// keyspace names the Redis keys and pub/sub channels of one Prefix.
//
// Every key of a channel carries the same hash tag, so in Redis Cluster the
// channel's meta hash, history stream, idempotency keys, presence keys and its
// shard pub/sub channel all sit in one slot: one Lua script can touch them all
// and SPUBLISH from inside that script is allowed.
type keyspace struct {
	prefix     string
	partitions int
}

// tagged returns the channel in its hash-tagged form. Normally the tag is the
// channel itself ({chat:1}). A channel containing braces (or an empty one)
// could end the tag early or leave it empty, and an empty tag makes Redis hash
// the whole key, scattering the channel's keys over slots; such channels get a
// hash of their name as the tag, followed by the name. With partitions the tag
// is the channel's partition number, which bounds the slots in use (and so the
// sharded pub/sub connections a node holds) to the number of partitions.
func (k keyspace) tagged(channel string) string {
	if k.partitions > 0 {
		h := fnv.New32a()
		_, _ = h.Write([]byte(channel))
		return "{" + strconv.FormatUint(uint64(h.Sum32())%uint64(k.partitions), 10) + "}" + channel
	}
	if channel != "" && !strings.ContainsAny(channel, "{}") {
		return "{" + channel + "}"
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(channel))
	return "{" + strconv.FormatUint(h.Sum64(), 36) + "}" + channel
}

func (k keyspace) pubsub(channel string) string { return k.prefix + ".ch." + k.tagged(channel) }
func (k keyspace) meta(channel string) string   { return k.prefix + ".meta." + k.tagged(channel) }
func (k keyspace) stream(channel string) string { return k.prefix + ".stream." + k.tagged(channel) }

func (k keyspace) idempotency(channel, key string) string {
	return k.prefix + ".idem." + k.tagged(channel) + "." + key
}

// presence returns the channel's presence keys: the sorted set of entry
// expiry times, the hash of client infos and the hash of per-user counts.
func (k keyspace) presence(channel string) []string {
	t := k.tagged(channel)
	return []string{
		k.prefix + ".presence.exp." + t,
		k.prefix + ".presence.data." + t,
		k.prefix + ".presence.users." + t,
	}
}

// nodes returns the registry keys: the sorted set of node expiry times and
// the hash of node infos, tagged alike so one script can use both.
func (k keyspace) nodes() []string {
	t := "{" + k.prefix + ".nodes}"
	return []string{t + ".exp", t + ".data"}
}

func (k keyspace) control() string { return k.prefix + ".control" }

// keySlot returns the Redis Cluster hash slot of key, honouring hash tags the
// way Redis does: the part between the first '{' and the next '}', if that
// part is not empty.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % 16384)
}

// crc16 is CRC-16/XMODEM, the checksum Redis Cluster uses for key slots.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
