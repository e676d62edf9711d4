package redisstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// scriptReply is a script's answer: {kind, [number, [number,]] field, value,
// ...}, or {"err", code, message} which parse turns into a commerce.Error.
// The order scripts answer two numbers: the sale's stock left (n) and its
// stock version (ver).
type scriptReply struct {
	kind   string
	n, ver int64
	fields map[string]string
}

// parseReply parses a reply that carries nums numbers (0 to 2) before its
// fields.
func parseReply(op string, v any, nums int) (scriptReply, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return scriptReply{}, internal(op, "unexpected reply %v", v)
	}
	var r scriptReply
	r.kind, _ = arr[0].(string)
	if r.kind == "err" {
		if len(arr) != 3 {
			return r, internal(op, "unexpected error reply %v", arr)
		}
		code, _ := arr[1].(string)
		msg, _ := arr[2].(string)
		return r, &commerce.Error{Code: commerce.Code(code), Message: msg}
	}
	rest := arr[1:]
	for i, dst := range []*int64{&r.n, &r.ver}[:nums] {
		if len(rest) == 0 {
			return r, internal(op, "unexpected reply %v", arr)
		}
		if *dst, ok = rest[0].(int64); !ok {
			return r, internal(op, "unexpected number %d: %v", i, rest[0])
		}
		rest = rest[1:]
	}
	if len(rest)%2 != 0 {
		return r, internal(op, "odd field list %v", arr)
	}
	r.fields = make(map[string]string, len(rest)/2)
	for i := 0; i < len(rest); i += 2 {
		f, _ := rest[i].(string)
		val, _ := rest[i+1].(string)
		r.fields[f] = val
	}
	return r, nil
}

// msString formats a time as Unix milliseconds.
func msString(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// hashReader decodes fields of a hash, keeping the first error.
type hashReader struct {
	h   map[string]string
	err error
}

func (r *hashReader) str(f string) string { return r.h[f] }

func (r *hashReader) int(f string) int64 {
	v, err := strconv.ParseInt(r.h[f], 10, 64)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("field %s: %w", f, err)
	}
	return v
}

func (r *hashReader) time(f string) time.Time { return time.UnixMilli(r.int(f)).UTC() }

// optInt reads a number that may be absent (0).
func (r *hashReader) optInt(f string) int64 {
	if r.h[f] == "" {
		return 0
	}
	return r.int(f)
}

// optTime reads a time that may be absent.
func (r *hashReader) optTime(f string) *time.Time {
	if r.h[f] == "" {
		return nil
	}
	t := r.time(f)
	return &t
}

func streamFields(s commerce.Stream, tok string) []any {
	f := []any{"id", s.ID, "host", s.HostID, "title", s.Title, "state", string(s.State),
		"created", msString(s.CreatedAt), "tok", tok}
	if s.EndedAt != nil {
		f = append(f, "ended", msString(*s.EndedAt))
	}
	return f
}

func decodeStream(h map[string]string) (commerce.Stream, error) {
	r := hashReader{h: h}
	s := commerce.Stream{
		ID: r.str("id"), HostID: r.str("host"), Title: r.str("title"),
		State:     commerce.StreamState(r.str("state")),
		CreatedAt: r.time("created"), EndedAt: r.optTime("ended"),
	}
	return s, r.err
}

func saleFields(s commerce.FlashSale, tok string) []any {
	return []any{
		"id", s.ID, "stream", s.StreamID, "host", s.HostID,
		"pid", s.Product.ID, "pname", s.Product.Name, "pimg", s.Product.ImageURL,
		"price", strconv.FormatInt(s.Price, 10), "qty", strconv.Itoa(s.Quantity),
		"limit", strconv.Itoa(s.PerUserLimit),
		"starts", msString(s.StartsAt), "ends", msString(s.EndsAt),
		"stock", strconv.Itoa(s.Quantity), "sold", "0", "tok", tok,
	}
}

func decodeSale(h map[string]string) (commerce.FlashSale, error) {
	r := hashReader{h: h}
	s := commerce.FlashSale{
		ID: r.str("id"), StreamID: r.str("stream"), HostID: r.str("host"),
		Product:      commerce.Product{ID: r.str("pid"), Name: r.str("pname"), ImageURL: r.str("pimg")},
		Price:        r.int("price"),
		Quantity:     int(r.int("qty")),
		PerUserLimit: int(r.int("limit")),
		StartsAt:     r.time("starts"), EndsAt: r.time("ends"),
		StockLeft: int(r.int("stock")), Sold: int(r.int("sold")),
		StockVersion: r.optInt("sver"),
		EndedAt:      r.optTime("ended"),
	}
	return s, r.err
}

func decodeOrder(h map[string]string) (commerce.Order, error) {
	r := hashReader{h: h}
	o := commerce.Order{
		ID: r.str("id"), BuyerID: r.str("buyer"), BuyerName: r.str("bname"),
		FlashSaleID: r.str("sale"), StreamID: r.str("stream"), HostID: r.str("host"),
		Quantity: int(r.int("qty")), Amount: r.int("amount"),
		Status:        commerce.OrderStatus(r.str("status")),
		ReservedUntil: r.time("until"),
		CreatedAt:     r.time("created"), UpdatedAt: r.time("updated"),
		PaidAt: r.optTime("paid"),
	}
	if p := r.str("pay"); p != "" && r.err == nil {
		r.err = json.Unmarshal([]byte(p), &o.Payment)
	}
	return o, r.err
}

// idemRecord is what an idempotency key is bound to (idempotency.lua).
type idemRecord struct {
	Hash    string `json:"h"`
	SaleID  string `json:"s"`
	BuyerID string `json:"b"`
	OrderID string `json:"o"`
}
