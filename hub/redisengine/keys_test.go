package redisengine

import (
	"testing"
)

func TestKeySlot_MatchesRedis(t *testing.T) {
	// Values from CLUSTER KEYSLOT and the Redis Cluster specification.
	for key, want := range map[string]int{
		"foo":                  12182,
		"123456789":            12739, // CRC16/XMODEM check value 0x31C3
		"{user1000}.following": 3443,
		"{user1000}.followers": 3443,
		"foo{}{bar}":           8363, // an empty tag hashes the whole key
		"foo{{bar}}zap":        4015, // the tag is "{bar"
		"foo{bar}{zap}":        5061, // the first tag wins
		"":                     0,
	} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestKeyspace_ChannelKeysShareOneSlot(t *testing.T) {
	for _, k := range []keyspace{{prefix: "livehub"}, {prefix: "livehub", partitions: 16}} {
		for _, ch := range []string{"chat:1", "user:#42", "}", "{", "a}b", "{x}", "", "live:{stream}"} {
			keys := []string{k.pubsub(ch), k.meta(ch), k.stream(ch), k.idempotency(ch, "key}{")}
			keys = append(keys, k.presence(ch)...)
			slot := keySlot(keys[0])
			for _, key := range keys[1:] {
				if s := keySlot(key); s != slot {
					t.Errorf("partitions %d, channel %q: %q in slot %d, %q in slot %d", k.partitions, ch, keys[0], slot, key, s)
				}
			}
		}
		// Distinct channels never share a key name.
		if k.meta("a}b") == k.meta("a") || k.pubsub("{x}") == k.pubsub("x") {
			t.Errorf("partitions %d: distinct channels share a key", k.partitions)
		}
	}
	nodes := keyspace{prefix: "p"}.nodes()
	if keySlot(nodes[0]) != keySlot(nodes[1]) {
		t.Errorf("node registry keys %v in different slots", nodes)
	}
}

func TestKeyspace_PartitionsBoundSlots(t *testing.T) {
	k := keyspace{prefix: "livehub", partitions: 8}
	slots := make(map[int]bool)
	for i := 0; i < 1000; i++ {
		slots[keySlot(k.pubsub("chat:"+string(rune('a'+i%26))+string(rune('a'+i/26))))] = true
	}
	if len(slots) > 8 {
		t.Fatalf("1000 channels over %d slots with 8 partitions", len(slots))
	}
}
