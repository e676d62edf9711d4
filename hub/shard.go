package hub

// channelHash is FNV-1a over a channel name, without the allocation of a
// hash.Hash: it picks shards and locks on every publication and subscribe.
func channelHash(channel string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(channel); i++ {
		h ^= uint32(channel[i])
		h *= 16777619
	}
	return h
}
