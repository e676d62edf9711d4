// Package redisstore keeps LiveHub's commerce state in Redis, shared by
// every node: commerce.Store on a single server, a Sentinel-managed master or
// a Redis Cluster, through any go-redis UniversalClient.
//
// No node keeps a count of its own. Every decision about stock or an order's
// state is one Lua script run by Redis (lua/*.lua): reserve.lua checks the
// window, the per-user limit and the stock and reserves; mark_paid.lua and
// release.lua move a pending order to paid, or to expired or cancelled,
// exactly once however many nodes try at once; end_sale.lua and
// end_stream.lua end a sale or a stream once; claim_event.lua gives the
// announcement of a sale's start or end to one node. A script runs alone, so
// two checkouts can never both take the last unit. Every script that changes
// a sale's stock increments its stock version (field sver) in the same run.
//
// # Keys
//
// For prefix P, a sale S, a stream T, an order O, a buyer B and an
// idempotency key K:
//
//	P.stream.{st:T}            hash: the stream
//	P.stream.{st:T}.sales      sorted set: sale id -> creation rank (1, 2, ...)
//	P.sale.{s:S}               hash: the sale, with stock (units neither
//	                           reserved nor sold), sold, ended and closed
//	P.sale.{s:S}.held          hash: buyer id -> units in the buyer's pending
//	                           and paid orders of S
//	P.sale.{s:S}.orders        sorted set: order id -> created (Unix ms)
//	P.sale.{s:S}.due           sorted set: pending order id -> reserved until (Unix ms)
//	P.sale.{s:S}.order.O       hash: the order, kept for OrderTTL
//	P.order.{o:O}              string: the order's sale id, kept for OrderTTL
//	P.buyer.{b:B}.orders       sorted set: order id -> created (Unix ms)
//	P.idem.{i:K}               string: JSON of the request that first used K
//	                           and the order id it was to make, kept for
//	                           IdempotencyTTL
//	{P.sales}.open             set: ids of sales that may hold pending
//	                           reservations, visited by DueReservations
//	{P.sales}.lifecycle        sorted set: sale id -> when its next unclaimed
//	                           lifecycle event is due (Unix ms), visited by
//	                           DueSaleEvents; the claims themselves are the
//	                           sale's fields ann_started and ann_ended
//
// A sale and its orders share the hash tag {s:S}, so on Redis Cluster they
// sit in one slot and every script's keys are in that slot. An order id does
// not name its sale, so P.order.{o:O} maps it there; GetOrder, MarkPaid and
// Release read it first (one extra round trip) and then run on the sale's
// slot; SetPayment is given the sale by its caller. The indexes outside the
// sale's slot (P.order, P.buyer, P.stream.{st:T}.sales, {P.sales}.open)
// cannot be written by the scripts on Cluster; they are written around them
// so that a node dying in between leaves nothing that matters undone: a sale
// is listed and opened before it is created (lists skip entries with no
// sale), an order is indexed right after it is made, again on an idempotent
// replay, and again by DueReservations, which finds pending orders through
// the sale's own due set. On a single Redis, where slots do not matter,
// reserve.lua also binds the idempotency key and writes the order's
// indexes, so a checkout's reservation is one round trip. Ids of streams,
// sales and orders may not contain '{' or '}', which would move or split
// their hash tag.
//
// # Idempotency
//
// An idempotency key is bound, for IdempotencyTTL, to the request hash, sale
// and buyer of the first request that used it and to the order id that
// request was to make; a later request with the key but another hash, sale
// or buyer is EIDEMPOTENCY. Every request with the key runs reserve.lua for
// that order id, so a retry returns the order when it was made (Replayed)
// and is decided afresh when the first attempt failed or never reached
// Redis. Two such requests racing both end with the one order.
//
// go-redis retries a command whose reply was lost, so a script may run twice
// for one call. Each call carries a random token that the script stores with
// the change it makes; the retry finds its own token and reports the change
// as made, not as a replay or a conflict.
//
// Times are Unix milliseconds; amounts are computed by reserve.lua from the
// stored price and must stay below 2^53, which CreateFlashSale checks.
package redisstore

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/redisutil"
	"github.com/redis/go-redis/v9"
)

var _ commerce.Store = (*Store)(nil)

// Defaults for the zero values of Options.
const (
	defaultPrefix         = "livehub"
	defaultIdempotencyTTL = 24 * time.Hour
	defaultOrderTTL       = 30 * 24 * time.Hour
	defaultCloseGrace     = time.Minute
)

// Options configure a Store. Every zero value has a default.
type Options struct {
	// Prefix starts every key, so several deployments can share a Redis. It
	// must not contain '{' or '}'. Zero means "livehub".
	Prefix string
	// IdempotencyTTL is how long an idempotency key stays bound to the
	// request that first used it. Zero means 24h.
	IdempotencyTTL time.Duration
	// OrderTTL is how long an order is kept after it was made; a
	// reservation may not last longer. Zero means 30 days.
	OrderTTL time.Duration
	// CloseGrace is how long after its end time a sale still accepts the
	// release of late reservations before DueReservations closes it and
	// stops visiting it; reservations stamped with a Now before the end but
	// arriving after the close are refused as ended. A sale ended by its
	// host closes as soon as it holds no reservation. Zero means 1 minute.
	CloseGrace time.Duration
}

// Store is a commerce.Store on Redis. It is safe for concurrent use, and any
// number of Stores, in any number of processes, may share one Redis.
type Store struct {
	c          redis.UniversalClient
	k          keyspace
	idemTTL    time.Duration
	orderTTL   time.Duration
	closeGrace time.Duration
	// single is true on one Redis server (or a Sentinel-managed master):
	// a script may then touch keys of any slot, and Reserve binds, decides
	// and indexes in one script.
	single bool
}

// New returns a Store on client. It panics when opts.Prefix contains a brace.
func New(client redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	redisutil.CheckPrefix("redisstore", opts.Prefix)
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = defaultIdempotencyTTL
	}
	if opts.OrderTTL <= 0 {
		opts.OrderTTL = defaultOrderTTL
	}
	if opts.CloseGrace <= 0 {
		opts.CloseGrace = defaultCloseGrace
	}
	_, single := client.(*redis.Client)
	return &Store{
		c: client, k: keyspace{opts.Prefix},
		idemTTL: opts.IdempotencyTTL, orderTTL: opts.OrderTTL, closeGrace: opts.CloseGrace,
		single: single,
	}
}

// token returns a random value that tells this call's writes from others'.
func token() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// fail turns an error of the client into a commerce.Error (redisutil.Fail).
func fail(op string, err error) error { return redisutil.Fail("redisstore", "the store", op, err) }

func internal(op string, format string, args ...any) error {
	return redisutil.Internal("redisstore", "the store", op, format, args...)
}

// hasBrace reports whether an id would break its key's hash tag.
func hasBrace(id string) bool { return strings.ContainsAny(id, "{}") }
