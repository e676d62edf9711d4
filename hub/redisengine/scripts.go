package redisengine

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

func mustLua(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// The scripts run with EVALSHA and fall back to EVAL when Redis does not have
// them yet (a restart, a new cluster node), which redis.Script does.
var (
	publishScript = redis.NewScript(mustLua("publish.lua"))
	historyScript = redis.NewScript(mustLua("history.lua"))

	// The presence scripts share their expiry sweep; it is prepended to each.
	presenceAddScript    = presenceScript("presence_add.lua")
	presenceRemoveScript = presenceScript("presence_remove.lua")
	presenceGetScript    = presenceScript("presence_get.lua")
	presenceStatsScript  = presenceScript("presence_stats.lua")

	nodeUpdateScript = redis.NewScript(mustLua("node_update.lua"))
	nodesScript      = redis.NewScript(mustLua("nodes.lua"))
)

func presenceScript(name string) *redis.Script {
	return redis.NewScript(mustLua("presence_expire.lua") + "\n" + mustLua(name))
}
