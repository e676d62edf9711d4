package redisstore

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/redis/go-redis/v9"
)

// staleListing is how long a lifecycle listing whose sale does not exist is
// kept: CreateFlashSale lists a sale before it creates it, so a listing
// without its sale is either a sale being created or one that never was.
const staleListing = time.Hour

// claimFields returns the sale's claim field and time field of a lifecycle
// event.
func claimFields(event string) (claim, at string, err error) {
	switch event {
	case commerce.EventFlashSaleStarted:
		return "ann_started", "starts", nil
	case commerce.EventFlashSaleEnded:
		return "ann_ended", "ends", nil
	}
	return "", "", commerce.FieldError("event", "must be %s or %s", commerce.EventFlashSaleStarted, commerce.EventFlashSaleEnded)
}

// ClaimSaleEvent claims a due lifecycle event of a sale with
// claim_event.lua, once across every node. See commerce.Store.
func (s *Store) ClaimSaleEvent(ctx context.Context, saleID, event string, now time.Time) (bool, error) {
	claim, at, err := claimFields(event)
	if err != nil {
		return false, err
	}
	if hasBrace(saleID) {
		return false, errNoSale()
	}
	n, err := claimEventScript.Run(ctx, s.c, []string{s.k.sale(saleID)}, claim, at, msString(now), token()).Int()
	if err != nil {
		return false, fail("claim sale event", err)
	}
	if n < 0 {
		return false, errNoSale()
	}
	return n == 1, nil
}

// DueSaleEvents lists the unclaimed lifecycle events due by now. It reads
// the sales listed as due in {P.sales}.lifecycle and, on the way, moves a
// sale whose start was claimed to its end time and drops a sale with both
// events claimed. See commerce.Store.
func (s *Store) DueSaleEvents(ctx context.Context, now time.Time, limit int) ([]commerce.SaleEvent, error) {
	nowMS := now.UnixMilli()
	listed, err := s.c.ZRangeByScoreWithScores(ctx, s.k.lifecycle(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(nowMS, 10), Count: 1000,
	}).Result()
	if err != nil {
		return nil, fail("due sale events", err)
	}
	if len(listed) == 0 {
		return []commerce.SaleEvent{}, nil
	}
	cmds := make([]*redis.SliceCmd, len(listed))
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, z := range listed {
			cmds[i] = p.HMGet(ctx, s.k.sale(z.Member.(string)), "starts", "ends", "ann_started", "ann_ended")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fail("due sale events", err)
	}
	type due struct {
		ev commerce.SaleEvent
		at int64
	}
	var all []due
	var drop []any
	var move []redis.Z
	for i, z := range listed {
		id := z.Member.(string)
		v := cmds[i].Val()
		str := func(j int) string { s, _ := v[j].(string); return s }
		if len(v) != 4 || str(0) == "" {
			if int64(z.Score) < nowMS-staleListing.Milliseconds() {
				drop = append(drop, id)
			}
			continue
		}
		starts, err1 := strconv.ParseInt(str(0), 10, 64)
		ends, err2 := strconv.ParseInt(str(1), 10, 64)
		if err1 != nil || err2 != nil {
			return nil, internal("due sale events", "sale %s: bad times %q, %q", id, str(0), str(1))
		}
		startClaimed, endClaimed := str(2) != "", str(3) != ""
		if !startClaimed && starts <= nowMS {
			all = append(all, due{commerce.SaleEvent{SaleID: id, Event: commerce.EventFlashSaleStarted}, starts})
		}
		if !endClaimed && ends <= nowMS {
			all = append(all, due{commerce.SaleEvent{SaleID: id, Event: commerce.EventFlashSaleEnded}, ends})
		}
		switch {
		case !startClaimed:
			if int64(z.Score) != starts {
				move = append(move, redis.Z{Score: float64(starts), Member: id})
			}
		case !endClaimed:
			if int64(z.Score) != ends {
				move = append(move, redis.Z{Score: float64(ends), Member: id})
			}
		default:
			drop = append(drop, id)
		}
	}
	if len(drop) > 0 || len(move) > 0 {
		_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			if len(drop) > 0 {
				p.ZRem(ctx, s.k.lifecycle(), drop...)
			}
			if len(move) > 0 {
				p.ZAddXX(ctx, s.k.lifecycle(), move...)
			}
			return nil
		})
		if err != nil {
			return nil, fail("due sale events", err)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].at != all[j].at {
			return all[i].at < all[j].at
		}
		if all[i].ev.SaleID != all[j].ev.SaleID {
			return all[i].ev.SaleID < all[j].ev.SaleID
		}
		return all[i].ev.Event == commerce.EventFlashSaleStarted && all[j].ev.Event != commerce.EventFlashSaleStarted
	})
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	out := make([]commerce.SaleEvent, len(all))
	for i, d := range all {
		out[i] = d.ev
	}
	return out, nil
}
