package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/redis/go-redis/v9"
)

func (s *Store) validateReserve(r *commerce.ReserveRequest) error {
	switch {
	case r.SaleID == "":
		return commerce.FieldError("sale_id", "is required")
	case r.BuyerID == "":
		return commerce.FieldError("buyer_id", "is required")
	case r.OrderID == "":
		return commerce.FieldError("order_id", "is required")
	case hasBrace(r.OrderID):
		return commerce.FieldError("order_id", "must not contain braces")
	case r.Quantity < 1:
		return commerce.FieldError("quantity", "must be at least 1")
	case r.Now.IsZero():
		return commerce.FieldError("now", "is required")
	case r.ReservedUntil.UnixMilli() <= r.Now.UnixMilli():
		return commerce.FieldError("reserved_until", "must be after now")
	case r.ReservedUntil.Sub(r.Now) >= s.orderTTL:
		return commerce.FieldError("reserved_until", "must be within the order TTL")
	}
	return nil
}

// Reserve makes an order pending payment with reserve.lua, or returns the
// order an earlier request with the same idempotency key made. See
// commerce.Store and the package comment.
//
// On a single Redis one script binds the idempotency key, decides and
// writes the order's indexes: one round trip. On Cluster, where those keys
// live in other slots, the key is bound first (idempotency.lua), then
// reserve.lua runs on the sale's slot, then the indexes are written.
func (s *Store) Reserve(ctx context.Context, r commerce.ReserveRequest) (commerce.ReserveResult, error) {
	if err := s.validateReserve(&r); err != nil {
		return commerce.ReserveResult{}, err
	}
	if s.single && r.IdempotencyKey != "" && !hasBrace(r.SaleID) {
		res, bound, err := s.reserveBinding(ctx, &r)
		if err != nil || bound == nil {
			return res, err
		}
		orderID, err := checkBinding(&r, bound)
		if err != nil {
			return commerce.ReserveResult{}, err
		}
		return s.reserve(ctx, &r, orderID)
	}
	orderID := r.OrderID
	if r.IdempotencyKey != "" {
		id, err := s.bindIdempotencyKey(ctx, &r)
		if err != nil {
			return commerce.ReserveResult{}, err
		}
		orderID = id
	}
	if hasBrace(r.SaleID) {
		return commerce.ReserveResult{}, errNoSale()
	}
	return s.reserve(ctx, &r, orderID)
}

// reserveArgs returns reserve.lua's five keys and nine arguments for
// orderID.
func (s *Store) reserveArgs(r *commerce.ReserveRequest, orderID string) ([]string, []any) {
	keys := []string{
		s.k.sale(r.SaleID), s.k.held(r.SaleID), s.k.orders(r.SaleID), s.k.due(r.SaleID),
		s.k.order(r.SaleID, orderID),
	}
	args := []any{
		orderID, r.BuyerID, r.BuyerName, strconv.Itoa(r.Quantity),
		msString(r.Now), msString(r.ReservedUntil),
		r.IdempotencyKey, token(), strconv.FormatInt(s.orderTTL.Milliseconds(), 10),
	}
	return keys, args
}

// reserve runs reserve.lua alone for orderID, then indexes the order.
func (s *Store) reserve(ctx context.Context, r *commerce.ReserveRequest, orderID string) (commerce.ReserveResult, error) {
	keys, args := s.reserveArgs(r, orderID)
	v, err := reserveScript.Run(ctx, s.c, keys, args...).Result()
	if err != nil {
		return commerce.ReserveResult{}, fail("reserve", err)
	}
	res, err := reserveResult(orderID, v)
	if err != nil {
		return res, err
	}
	// A replay indexes again: the call that made the order may have died
	// before it did.
	if err := s.indexOrder(ctx, res.Order); err != nil {
		return commerce.ReserveResult{}, err
	}
	return res, nil
}

// reserveBinding runs reserve.lua with the idempotency key and the indexes
// (a single Redis only): the key is bound to r and the order reserved and
// indexed in one step. When the key is bound to an earlier request already,
// it returns that request's record and nothing else happened.
func (s *Store) reserveBinding(ctx context.Context, r *commerce.ReserveRequest) (commerce.ReserveResult, *idemRecord, error) {
	rec, err := json.Marshal(idemRecord{Hash: r.RequestHash, SaleID: r.SaleID, BuyerID: r.BuyerID, OrderID: r.OrderID})
	if err != nil {
		return commerce.ReserveResult{}, nil, internal("reserve", "%v", err)
	}
	keys, args := s.reserveArgs(r, r.OrderID)
	keys = append(keys, s.k.idem(r.IdempotencyKey), s.k.orderSale(r.OrderID), s.k.buyerOrders(r.BuyerID))
	args = append(args, rec, strconv.FormatInt(s.idemTTL.Milliseconds(), 10))
	v, err := reserveScript.Run(ctx, s.c, keys, args...).Result()
	if err != nil {
		return commerce.ReserveResult{}, nil, fail("reserve", err)
	}
	if arr, ok := v.([]any); ok && len(arr) == 2 && arr[0] == "bound" {
		raw, _ := arr[1].(string)
		var bound idemRecord
		if err := json.Unmarshal([]byte(raw), &bound); err != nil {
			return commerce.ReserveResult{}, nil, internal("reserve", "idempotency record: %v", err)
		}
		return commerce.ReserveResult{}, &bound, nil
	}
	res, err := reserveResult(r.OrderID, v)
	return res, nil, err
}

// reserveResult parses reserve.lua's reply about orderID.
func reserveResult(orderID string, v any) (commerce.ReserveResult, error) {
	rep, err := parseReply("reserve", v, 2)
	if err != nil {
		return commerce.ReserveResult{}, err
	}
	o, err := decodeOrder(rep.fields)
	if err != nil {
		return commerce.ReserveResult{}, internal("reserve", "order %s: %v", orderID, err)
	}
	return commerce.ReserveResult{Order: o, Replayed: rep.kind == "replay", StockLeft: int(rep.n), StockVersion: rep.ver}, nil
}

// bindIdempotencyKey binds r's key to r unless it is bound already, and
// returns the order id that every request with the key reserves.
func (s *Store) bindIdempotencyKey(ctx context.Context, r *commerce.ReserveRequest) (string, error) {
	mine := idemRecord{Hash: r.RequestHash, SaleID: r.SaleID, BuyerID: r.BuyerID, OrderID: r.OrderID}
	b, err := json.Marshal(mine)
	if err != nil {
		return "", internal("reserve", "%v", err)
	}
	v, err := idempotencyScript.Run(ctx, s.c, []string{s.k.idem(r.IdempotencyKey)},
		b, strconv.FormatInt(s.idemTTL.Milliseconds(), 10)).Text()
	if errors.Is(err, redis.Nil) {
		return r.OrderID, nil
	}
	if err != nil {
		return "", fail("reserve", err)
	}
	var bound idemRecord
	if err := json.Unmarshal([]byte(v), &bound); err != nil {
		return "", internal("reserve", "idempotency record: %v", err)
	}
	return checkBinding(r, &bound)
}

// checkBinding returns the order id of the request a key is bound to, when
// r is the same request; another hash, sale or buyer is EIDEMPOTENCY.
func checkBinding(r *commerce.ReserveRequest, bound *idemRecord) (string, error) {
	if bound.Hash != r.RequestHash || bound.SaleID != r.SaleID || bound.BuyerID != r.BuyerID {
		return "", commerce.Errorf(commerce.EIDEMPOTENCY, "the idempotency key was used with another request")
	}
	return bound.OrderID, nil
}

// indexOrder records o's sale under its id and lists it under its buyer. Both
// writes are idempotent.
func (s *Store) indexOrder(ctx context.Context, o commerce.Order) error {
	created := float64(o.CreatedAt.UnixMilli())
	buyerKey := s.k.buyerOrders(o.BuyerID)
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, s.k.orderSale(o.ID), o.FlashSaleID, s.orderTTL)
		p.ZAddNX(ctx, buyerKey, redis.Z{Score: created, Member: o.ID})
		p.ZRemRangeByScore(ctx, buyerKey, "-inf", "("+strconv.FormatInt(o.CreatedAt.Add(-s.orderTTL).UnixMilli(), 10))
		p.PExpire(ctx, buyerKey, s.orderTTL)
		return nil
	})
	return fail("index order", err)
}

// saleOf returns the id of the sale an order belongs to.
func (s *Store) saleOf(ctx context.Context, orderID string) (string, error) {
	if hasBrace(orderID) {
		return "", errNoOrder()
	}
	saleID, err := s.c.Get(ctx, s.k.orderSale(orderID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", errNoOrder()
	}
	return saleID, fail("find order", err)
}

func errNoOrder() error { return commerce.Errorf(commerce.ENOTFOUND, "no such order") }

// GetOrder returns an order.
func (s *Store) GetOrder(ctx context.Context, id string) (commerce.Order, error) {
	saleID, err := s.saleOf(ctx, id)
	if err != nil {
		return commerce.Order{}, err
	}
	h, err := s.c.HGetAll(ctx, s.k.order(saleID, id)).Result()
	if err != nil {
		return commerce.Order{}, fail("get order", err)
	}
	if len(h) == 0 {
		return commerce.Order{}, errNoOrder()
	}
	o, err := decodeOrder(h)
	if err != nil {
		return commerce.Order{}, internal("get order", "%s: %v", id, err)
	}
	return o, nil
}

// ListOrdersByBuyer returns a buyer's orders, newest first; limit <= 0 means all.
func (s *Store) ListOrdersByBuyer(ctx context.Context, buyerID string, limit int) ([]commerce.Order, error) {
	return s.listOrders(ctx, s.k.buyerOrders(buyerID), limit, func(ids []string) ([]string, error) {
		cmds := make([]*redis.StringCmd, len(ids))
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.Get(ctx, s.k.orderSale(id))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fail("list orders", err)
		}
		keys := make([]string, len(ids))
		for i, cmd := range cmds {
			if saleID := cmd.Val(); saleID != "" {
				keys[i] = s.k.order(saleID, ids[i])
			}
		}
		return keys, nil
	})
}

// ListOrdersBySale returns a sale's orders, newest first; limit <= 0 means all.
func (s *Store) ListOrdersBySale(ctx context.Context, saleID string, limit int) ([]commerce.Order, error) {
	if hasBrace(saleID) {
		return []commerce.Order{}, nil
	}
	return s.listOrders(ctx, s.k.orders(saleID), limit, func(ids []string) ([]string, error) {
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = s.k.order(saleID, id)
		}
		return keys, nil
	})
}

// listOrders reads the orders of a sorted set of order ids, highest score
// first (ties by descending id), a page at a time, skipping orders that are
// gone. keysOf maps ids to order hash keys, "" for an order not found.
func (s *Store) listOrders(ctx context.Context, index string, limit int, keysOf func([]string) ([]string, error)) ([]commerce.Order, error) {
	out := []commerce.Order{}
	page := int64(limit)
	if limit <= 0 {
		page = 500
	}
	for start := int64(0); ; start += page {
		ids, err := s.c.ZRevRange(ctx, index, start, start+page-1).Result()
		if err != nil {
			return nil, fail("list orders", err)
		}
		keys, err := keysOf(ids)
		if err != nil {
			return nil, err
		}
		cmds := make([]*redis.MapStringStringCmd, len(ids))
		_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				if k != "" {
					cmds[i] = p.HGetAll(ctx, k)
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fail("list orders", err)
		}
		for i, cmd := range cmds {
			if cmd == nil || len(cmd.Val()) == 0 {
				continue
			}
			o, err := decodeOrder(cmd.Val())
			if err != nil {
				return nil, internal("list orders", "%s: %v", ids[i], err)
			}
			out = append(out, o)
			if limit > 0 && len(out) == limit {
				return out, nil
			}
		}
		if int64(len(ids)) < page {
			return out, nil
		}
	}
}

// SetPayment records the gateway's charge on the pending order o (as
// Reserve returned it) with set_payment.lua, and returns o with it; a final
// order is ECONFLICT. The sale names the order's key, and a pending order
// changes in nothing but its payment, so this is one round trip that
// neither looks the sale up nor reads the order back.
func (s *Store) SetPayment(ctx context.Context, o commerce.Order, p commerce.Payment) (commerce.Order, error) {
	if o.ID == "" || hasBrace(o.FlashSaleID) || hasBrace(o.ID) {
		return commerce.Order{}, errNoOrder()
	}
	pay, err := json.Marshal(p)
	if err != nil {
		return commerce.Order{}, internal("set payment", "%v", err)
	}
	v, err := setPaymentScript.Run(ctx, s.c, []string{s.k.order(o.FlashSaleID, o.ID)}, pay).Result()
	if err != nil {
		return commerce.Order{}, fail("set payment", err)
	}
	if _, err := parseReply("set payment", v, 0); err != nil {
		return commerce.Order{}, err
	}
	// As GetOrder would decode it: the payment's own copy.
	o.Payment = commerce.Payment{}
	if err := json.Unmarshal(pay, &o.Payment); err != nil {
		return commerce.Order{}, internal("set payment", "%s: %v", o.ID, err)
	}
	return o, nil
}

// MarkPaid moves a pending order to paid with mark_paid.lua. See
// commerce.Store.
func (s *Store) MarkPaid(ctx context.Context, orderID string, p commerce.Payment, at time.Time) (commerce.Transition, error) {
	saleID, err := s.saleOf(ctx, orderID)
	if err != nil {
		return commerce.Transition{}, err
	}
	pay, err := json.Marshal(p)
	if err != nil {
		return commerce.Transition{}, internal("mark paid", "%v", err)
	}
	keys := []string{s.k.sale(saleID), s.k.due(saleID), s.k.order(saleID, orderID)}
	v, err := markPaidScript.Run(ctx, s.c, keys, orderID, msString(at), pay, token()).Result()
	return transition("mark paid", v, err)
}

// Release moves a pending order to to (expired or cancelled) with
// release.lua and puts its units back. See commerce.Store.
func (s *Store) Release(ctx context.Context, orderID string, to commerce.OrderStatus, at time.Time) (commerce.Transition, error) {
	if to != commerce.OrderExpired && to != commerce.OrderCancelled {
		return commerce.Transition{}, commerce.FieldError("status", "must be expired or cancelled")
	}
	saleID, err := s.saleOf(ctx, orderID)
	if err != nil {
		return commerce.Transition{}, err
	}
	keys := []string{s.k.sale(saleID), s.k.held(saleID), s.k.due(saleID), s.k.order(saleID, orderID)}
	v, err := releaseScript.Run(ctx, s.c, keys, orderID, string(to), msString(at), token()).Result()
	return transition("release", v, err)
}

func transition(op string, v any, err error) (commerce.Transition, error) {
	if err != nil {
		return commerce.Transition{}, fail(op, err)
	}
	rep, err := parseReply(op, v, 2)
	if err != nil {
		return commerce.Transition{}, err
	}
	o, err := decodeOrder(rep.fields)
	if err != nil {
		return commerce.Transition{}, internal(op, "%v", err)
	}
	return commerce.Transition{Order: o, Changed: rep.kind == "changed", StockLeft: int(rep.n), StockVersion: rep.ver}, nil
}

// DueReservations lists pending orders whose ReservedUntil is before now,
// earliest deadline first (ties by id); limit <= 0 means all. It asks every
// open sale (due.lua), drops the sales that closed, and indexes the orders
// it returns in case the node that made them died before it did.
func (s *Store) DueReservations(ctx context.Context, now time.Time, limit int) ([]string, error) {
	sales, err := s.c.SMembers(ctx, s.k.openSales()).Result()
	if err != nil {
		return nil, fail("due reservations", err)
	}
	type due struct {
		id, saleID string
		at         int64
	}
	var all []due
	var closed []any
	for _, saleID := range sales {
		v, err := dueScript.Run(ctx, s.c, []string{s.k.sale(saleID), s.k.due(saleID)},
			msString(now), strconv.Itoa(max(limit, 0)), strconv.FormatInt(s.closeGrace.Milliseconds(), 10)).Slice()
		if err != nil {
			return nil, fail("due reservations", err)
		}
		if len(v) == 0 || len(v)%2 != 1 {
			return nil, internal("due reservations", "unexpected reply %v", v)
		}
		if n, _ := v[0].(int64); n == 1 {
			closed = append(closed, saleID)
		}
		for i := 1; i < len(v); i += 2 {
			id, _ := v[i].(string)
			score, _ := v[i+1].(string)
			at, err := strconv.ParseFloat(score, 64)
			if err != nil {
				return nil, internal("due reservations", "score %q: %v", score, err)
			}
			all = append(all, due{id: id, saleID: saleID, at: int64(at)})
		}
	}
	if len(closed) > 0 {
		if err := s.c.SRem(ctx, s.k.openSales(), closed...).Err(); err != nil {
			return nil, fail("due reservations", err)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].at != all[j].at {
			return all[i].at < all[j].at
		}
		return all[i].id < all[j].id
	})
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	ids := make([]string, len(all))
	if len(all) == 0 {
		return ids, nil
	}
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range all {
			ids[i] = d.id
			p.SetNX(ctx, s.k.orderSale(d.id), d.saleID, s.orderTTL)
		}
		return nil
	})
	if err != nil {
		return nil, fail("due reservations", err)
	}
	return ids, nil
}
