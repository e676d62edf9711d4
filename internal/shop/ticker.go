package shop

import (
	"context"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// placedTicker is the data of order.placed, the room's purchase ticker: one
// or more purchases of a sale, with no buyer id and the newest buyer's name
// masked.
type placedTicker struct {
	Buyer       string `json:"buyer"`
	FlashSaleID string `json:"flash_sale_id"`
	// Orders is how many checkouts the event stands for; Quantity their
	// units.
	Orders   int `json:"orders"`
	Quantity int `json:"quantity"`
}

// pendingTicker is an order.placed of a sale: sent at once, or folding the
// purchases that wait for the end of the sale's interval.
type pendingTicker struct {
	streamID string
	data     placedTicker
}

// placed counts o in its sale's purchase ticker. The first purchase after a
// quiet interval is returned, to be published now (now true); a purchase
// within the interval is folded into the sale's pending event, which
// flushTicker publishes when the interval ends. A big sale then sends its
// room one ticker event per interval, not one per buyer, each delivered to
// every viewer ahead of the stock events behind it.
func (s *Service) placed(o commerce.Order) (t pendingTicker, now bool) {
	buyer := MaskName(o.BuyerName)
	at := time.Now()
	s.tickerMu.Lock()
	defer s.tickerMu.Unlock()
	p, waiting := s.tickerPending[o.FlashSaleID]
	if !waiting {
		if last, ok := s.tickerLast[o.FlashSaleID]; !ok || at.Sub(last) >= s.cfg.TickerInterval {
			s.tickerLast[o.FlashSaleID] = at
			return pendingTicker{streamID: o.StreamID, data: placedTicker{
				Buyer: buyer, FlashSaleID: o.FlashSaleID, Orders: 1, Quantity: o.Quantity,
			}}, true
		}
		p = &pendingTicker{streamID: o.StreamID, data: placedTicker{FlashSaleID: o.FlashSaleID}}
		s.tickerPending[o.FlashSaleID] = p
	}
	p.data.Orders++
	p.data.Quantity += o.Quantity
	p.data.Buyer = buyer
	return pendingTicker{}, false
}

// flushTicker publishes the folded purchases of every sale whose interval
// has ended since its last order.placed (of all, when final), and forgets
// the sales quiet for a whole interval.
func (s *Service) flushTicker(ctx context.Context, final bool) {
	now := time.Now()
	var due []pendingTicker
	s.tickerMu.Lock()
	for sale, p := range s.tickerPending {
		if final || now.Sub(s.tickerLast[sale]) >= s.cfg.TickerInterval {
			due = append(due, *p)
			delete(s.tickerPending, sale)
			s.tickerLast[sale] = now
		}
	}
	for sale, last := range s.tickerLast {
		if _, waiting := s.tickerPending[sale]; !waiting && now.Sub(last) >= s.cfg.TickerInterval {
			delete(s.tickerLast, sale)
		}
	}
	s.tickerMu.Unlock()
	for _, t := range due {
		s.emitTicker(ctx, t)
	}
}

// emitTicker publishes an order.placed to the room at low priority: a
// congested connection drops the ticker before stock and sale events. It
// carries no idempotency key.
func (s *Service) emitTicker(ctx context.Context, t pendingTicker) {
	s.emitPriority(ctx, commerce.EventOrderPlaced, t.data, "", true, liveChannel(t.streamID))
}
