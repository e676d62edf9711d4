package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/redis/go-redis/v9"
)

// maxAmount bounds an order's amount to what reserve.lua's Lua numbers
// (doubles) hold exactly.
const maxAmount = 1<<53 - 1

// CreateStream stores s; an empty State means live.
func (s *Store) CreateStream(ctx context.Context, st commerce.Stream) error {
	switch {
	case st.ID == "":
		return commerce.FieldError("id", "is required")
	case hasBrace(st.ID):
		return commerce.FieldError("id", "must not contain braces")
	}
	if st.State == "" {
		st.State = commerce.StreamLive
	}
	tok := token()
	created, err := createScript.Run(ctx, s.c, []string{s.k.stream(st.ID)}, append([]any{tok}, streamFields(st, tok)...)...).Int()
	if err != nil {
		return fail("create stream", err)
	}
	if created == 0 {
		return commerce.Errorf(commerce.ECONFLICT, "stream %s already exists", st.ID)
	}
	return nil
}

// GetStream returns a stream.
func (s *Store) GetStream(ctx context.Context, id string) (commerce.Stream, error) {
	if hasBrace(id) {
		return commerce.Stream{}, errNoStream()
	}
	h, err := s.c.HGetAll(ctx, s.k.stream(id)).Result()
	if err != nil {
		return commerce.Stream{}, fail("get stream", err)
	}
	if len(h) == 0 {
		return commerce.Stream{}, errNoStream()
	}
	st, err := decodeStream(h)
	if err != nil {
		return commerce.Stream{}, internal("get stream", "%s: %v", id, err)
	}
	return st, nil
}

func errNoStream() error { return commerce.Errorf(commerce.ENOTFOUND, "no such stream") }

// EndStream marks a live stream ended at at.
func (s *Store) EndStream(ctx context.Context, id string, at time.Time) (commerce.Stream, error) {
	if hasBrace(id) {
		return commerce.Stream{}, errNoStream()
	}
	v, err := endStreamScript.Run(ctx, s.c, []string{s.k.stream(id)}, msString(at), token()).Result()
	if err != nil {
		return commerce.Stream{}, fail("end stream", err)
	}
	r, err := parseReply("end stream", v, 0)
	if err != nil {
		return commerce.Stream{}, err
	}
	st, err := decodeStream(r.fields)
	if err != nil {
		return commerce.Stream{}, internal("end stream", "%s: %v", id, err)
	}
	return st, nil
}

func validateSale(fs *commerce.FlashSale) error {
	switch {
	case fs.ID == "":
		return commerce.FieldError("id", "is required")
	case hasBrace(fs.ID):
		return commerce.FieldError("id", "must not contain braces")
	case fs.StreamID == "":
		return commerce.FieldError("stream_id", "is required")
	case hasBrace(fs.StreamID):
		return commerce.FieldError("stream_id", "must not contain braces")
	case fs.Quantity < 1:
		return commerce.FieldError("quantity", "must be at least 1")
	case fs.PerUserLimit < 1:
		return commerce.FieldError("per_user_limit", "must be at least 1")
	case fs.Price < 0 || fs.Price > maxAmount/int64(fs.PerUserLimit):
		return commerce.FieldError("price", "is out of range")
	case fs.StartsAt.IsZero():
		return commerce.FieldError("starts_at", "is required")
	case !fs.EndsAt.After(fs.StartsAt):
		return commerce.FieldError("ends_at", "must be after starts_at")
	}
	return nil
}

// CreateFlashSale stores the sale with StockLeft = Quantity, nothing sold and
// not ended. It does not check the stream: the caller does.
//
// The sale is listed under its stream and among the open sales before it is
// created, so no sale exists unlisted; a listing whose sale was never created
// is skipped by the readers.
func (s *Store) CreateFlashSale(ctx context.Context, fs commerce.FlashSale) error {
	if err := validateSale(&fs); err != nil {
		return err
	}
	if err := s.c.SAdd(ctx, s.k.openSales(), fs.ID).Err(); err != nil {
		return fail("create flash sale", err)
	}
	// Listed for its lifecycle events from its start; ZAddNX keeps the
	// position of a sale listed already.
	if err := s.c.ZAddNX(ctx, s.k.lifecycle(), redis.Z{Score: float64(fs.StartsAt.UnixMilli()), Member: fs.ID}).Err(); err != nil {
		return fail("create flash sale", err)
	}
	indexed, err := indexSaleScript.Run(ctx, s.c, []string{s.k.streamSales(fs.StreamID)}, fs.ID).Int()
	if err != nil {
		return fail("create flash sale", err)
	}
	tok := token()
	created, err := createScript.Run(ctx, s.c, []string{s.k.sale(fs.ID)}, append([]any{tok}, saleFields(fs, tok)...)...).Int()
	if err != nil {
		return fail("create flash sale", err)
	}
	if created == 0 {
		if indexed == 1 {
			// The id belongs to a sale of another stream: unlist it here.
			if owner, err := s.c.HGet(ctx, s.k.sale(fs.ID), "stream").Result(); err == nil && owner != fs.StreamID {
				s.c.ZRem(ctx, s.k.streamSales(fs.StreamID), fs.ID)
			}
		}
		return commerce.Errorf(commerce.ECONFLICT, "flash sale %s already exists", fs.ID)
	}
	return nil
}

// GetFlashSale returns a sale with its current StockLeft and Sold; State is
// left empty.
func (s *Store) GetFlashSale(ctx context.Context, id string) (commerce.FlashSale, error) {
	if hasBrace(id) {
		return commerce.FlashSale{}, errNoSale()
	}
	h, err := s.c.HGetAll(ctx, s.k.sale(id)).Result()
	if err != nil {
		return commerce.FlashSale{}, fail("get flash sale", err)
	}
	if len(h) == 0 {
		return commerce.FlashSale{}, errNoSale()
	}
	fs, err := decodeSale(h)
	if err != nil {
		return commerce.FlashSale{}, internal("get flash sale", "%s: %v", id, err)
	}
	return fs, nil
}

func errNoSale() error { return commerce.Errorf(commerce.ENOTFOUND, "no such flash sale") }

// EndFlashSale ends a sale at at. A sale already ended, by its host or
// because at is not before EndsAt, is ECONFLICT.
func (s *Store) EndFlashSale(ctx context.Context, id string, at time.Time) (commerce.FlashSale, error) {
	if hasBrace(id) {
		return commerce.FlashSale{}, errNoSale()
	}
	v, err := endSaleScript.Run(ctx, s.c, []string{s.k.sale(id)}, msString(at), token()).Result()
	if err != nil {
		return commerce.FlashSale{}, fail("end flash sale", err)
	}
	r, err := parseReply("end flash sale", v, 0)
	if err != nil {
		return commerce.FlashSale{}, err
	}
	fs, err := decodeSale(r.fields)
	if err != nil {
		return commerce.FlashSale{}, internal("end flash sale", "%s: %v", id, err)
	}
	return fs, nil
}

// ListFlashSales returns a stream's sales in the order they were created.
func (s *Store) ListFlashSales(ctx context.Context, streamID string) ([]commerce.FlashSale, error) {
	out := []commerce.FlashSale{}
	if hasBrace(streamID) {
		return out, nil
	}
	ids, err := s.c.ZRange(ctx, s.k.streamSales(streamID), 0, -1).Result()
	if err != nil {
		return nil, fail("list flash sales", err)
	}
	if len(ids) == 0 {
		return out, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.k.sale(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fail("list flash sales", err)
	}
	for i, cmd := range cmds {
		h := cmd.Val()
		if len(h) == 0 {
			continue
		}
		fs, err := decodeSale(h)
		if err != nil {
			return nil, internal("list flash sales", "%s: %v", ids[i], err)
		}
		if fs.StreamID == streamID {
			out = append(out, fs)
		}
	}
	return out, nil
}
