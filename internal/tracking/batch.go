package tracking

import (
	"context"
	"errors"

	"github.com/livehub/livehub/internal/commerce"
)

// BatchResult tells the courier app which stored points were kept.
type BatchResult struct {
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	// Rejections say why, by index in the batch.
	Rejections []Rejection `json:"rejections"`
	// Published is the courier.location sent for the newest accepted point;
	// nil when none was accepted.
	Published *Location `json:"published"`
}

// Rejection is one refused point of a batch.
type Rejection struct {
	Index  int    `json:"index"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// Batch takes the points a courier's app stored while offline, oldest
// first. Each is checked in order against the last accepted one (ranges,
// device time, speed; the throttle does not apply within a batch); every
// accepted point joins the path in one step, and only the newest is
// published as courier.location. A batch refused as a whole (not the
// courier, tracking ended) is an error.
func (t *Tracker) Batch(ctx context.Context, actor Actor, orderID string, points []Point) (BatchResult, error) {
	if len(points) == 0 {
		return BatchResult{}, commerce.FieldError("points", "must hold at least one point")
	}
	if len(points) > t.cfg.MaxBatch {
		return BatchResult{}, commerce.FieldError("points", "must hold at most %d points", t.cfg.MaxBatch)
	}
	for range maxAttempts {
		snap, err := t.state.Get(ctx, orderID)
		if err != nil {
			return BatchResult{}, stateError(err)
		}
		if snap.CourierID != actor.UserID {
			return BatchResult{}, stateError(errNotCourier)
		}
		if snap.Status.Ended() {
			return BatchResult{}, stateError(ErrEnded)
		}
		res := BatchResult{Rejections: []Rejection{}}
		var accepted []Point
		prev := snap.Last
		for i, p := range points {
			err := p.Validate()
			if err == nil {
				err = follow(prev, p, t.cfg.MaxSpeedKmh)
			}
			var pe *PointError
			if errors.As(err, &pe) {
				res.Rejections = append(res.Rejections, Rejection{Index: i, Field: pe.Field, Reason: pe.Message})
				continue
			}
			accepted = append(accepted, p)
			prev = &accepted[len(accepted)-1]
		}
		res.Accepted, res.Rejected = len(accepted), len(res.Rejections)
		if len(accepted) == 0 {
			return res, nil
		}
		recent, err := t.state.Path(ctx, orderID, recentPoints)
		if err != nil {
			return BatchResult{}, err
		}
		err = t.state.Append(ctx, AppendRequest{
			OrderID: orderID, PrevDeviceTime: deviceTime(snap.Last), Points: accepted,
			Now: t.now(), PathMax: t.cfg.PathMax,
		})
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return BatchResult{}, stateError(err)
		}
		loc := t.location(snap.Address, append(recent, accepted...))
		res.Published = &loc
		t.maybeArriving(ctx, snap.Assignment, accepted, loc)
		t.emit(ctx, EventCourierLocation, loc, "", orderChannel(orderID))
		return res, nil
	}
	return BatchResult{}, commerce.Errorf(commerce.ECONFLICT, "other locations arrived at the same time; send the batch again")
}
