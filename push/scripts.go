package push

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

// The scripts run with EVALSHA and fall back to EVAL when Redis does not
// have them yet, which redis.Script does.
var (
	unregisterScript = redis.NewScript(mustLua("unregister.lua"))
	promoteScript    = redis.NewScript(mustLua("promote.lua"))
)
