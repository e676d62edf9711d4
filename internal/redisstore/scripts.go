package redisstore

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

func mustLua(name string) *redis.Script {
	b, err := luaFiles.ReadFile("lua/" + name)
	if err != nil {
		panic(err)
	}
	return redis.NewScript(string(b))
}

// The scripts run with EVALSHA and fall back to EVAL when Redis does not have
// them yet (a restart, a new cluster node), which redis.Script does.
var (
	createScript      = mustLua("create.lua")
	indexSaleScript   = mustLua("index_sale.lua")
	endStreamScript   = mustLua("end_stream.lua")
	endSaleScript     = mustLua("end_sale.lua")
	idempotencyScript = mustLua("idempotency.lua")
	reserveScript     = mustLua("reserve.lua")
	markPaidScript    = mustLua("mark_paid.lua")
	releaseScript     = mustLua("release.lua")
	setPaymentScript  = mustLua("set_payment.lua")
	dueScript         = mustLua("due.lua")
	claimEventScript  = mustLua("claim_event.lua")
)
