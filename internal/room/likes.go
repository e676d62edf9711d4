package room

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/commerce"
)

// likesInput is the data of a likes.add call.
type likesInput struct {
	StreamID string `json:"stream_id"`
	Count    int    `json:"count"`
}

// LikesCount is the data of a likes.count event.
type LikesCount struct {
	Total int64 `json:"total"`
	// RatePerSecond is the likes added since the previous likes.count per
	// second, over at most two intervals, so a burst after a quiet spell
	// shows as a burst.
	RatePerSecond float64 `json:"rate_per_second"`
}

// AddLikes answers the likes.add RPC: {"stream_id": "...", "count": n}, the
// taps of one viewer since its last call. The count is only added to this
// node's counter; the ticker of Run adds the counters to the state and
// announces the total, so a thousand tapping viewers cost a few events a
// second, not one per tap.
func (r *Room) AddLikes(ctx context.Context, c *hub.Client, data []byte) ([]byte, error) {
	var in likesInput
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || len(bytes.TrimSpace(data[dec.InputOffset():])) > 0 || in.StreamID == "" {
		return nil, hub.ErrorBadRequest.WithMessage(`send {"stream_id": "...", "count": n}`)
	}
	if in.Count < 1 || in.Count > r.cfg.MaxLikesPerCall {
		return nil, hub.ErrorBadRequest.WithMessage("count must be between 1 and " + strconv.Itoa(r.cfg.MaxLikesPerCall))
	}
	st, err := r.streams.get(ctx, in.StreamID)
	if err != nil {
		if commerce.ErrorCode(err) == commerce.ENOTFOUND {
			return nil, hub.ErrorUnknownChannel.WithMessage("no such stream")
		}
		r.log.Warn("room: read stream", "stream", in.StreamID, "err", err)
		return nil, hub.ErrorInternal
	}
	if st.State != commerce.StreamLive {
		return nil, hub.ErrorNotAvailable.WithMessage("the stream has ended")
	}
	r.likesMu.Lock()
	r.pending[in.StreamID] += int64(in.Count)
	r.likesMu.Unlock()
	r.metrics.likes.Add(float64(in.Count))
	return []byte(`{"accepted":` + strconv.Itoa(in.Count) + `}`), nil
}

// takePending returns this node's counted taps and starts counting afresh.
func (r *Room) takePending() map[string]int64 {
	r.likesMu.Lock()
	defer r.likesMu.Unlock()
	p := r.pending
	r.pending = make(map[string]int64, len(p))
	return p
}

func (r *Room) restorePending(stream string, n int64) {
	r.likesMu.Lock()
	r.pending[stream] += n
	r.likesMu.Unlock()
}

// flushLikes adds this node's taps to the state and, when announce is set,
// publishes the totals this node may announce.
func (r *Room) flushLikes(ctx context.Context, announce bool) {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	pending := r.takePending()
	for stream, n := range pending {
		r.flushStreamLocked(ctx, stream, n, announce)
	}
	if !announce {
		return
	}
	for stream := range r.unannounced {
		if _, done := pending[stream]; !done {
			r.flushStreamLocked(ctx, stream, 0, true)
		}
	}
}

// flushStreamLocked adds n taps to the stream's total and announces it if
// this node wins the interval. A total another node kept this node from
// announcing is tried again next tick, until someone announced it. r.flushMu
// must be held.
func (r *Room) flushStreamLocked(ctx context.Context, stream string, n int64, announce bool) {
	total, err := r.state.AddLikes(ctx, stream, n)
	if err != nil {
		r.restorePending(stream, n)
		r.log.Warn("room: add likes", "stream", stream, "err", err)
		return
	}
	if !announce {
		r.unannounced[stream] = struct{}{}
		return
	}
	now := r.cfg.Now()
	a, err := r.state.ClaimAnnouncement(ctx, stream, "likes", total, r.cfg.LikesInterval, now)
	if err != nil {
		r.unannounced[stream] = struct{}{}
		r.log.Warn("room: claim likes announcement", "stream", stream, "err", err)
		return
	}
	switch {
	case a.Claimed:
		delete(r.unannounced, stream)
		r.metrics.announcements.WithLabelValues("likes").Inc()
		r.emit(ctx, EventLikesCount, LikesCount{Total: total, RatePerSecond: likesRate(total, a, now, r.cfg.LikesInterval)}, liveChannel(stream))
	case a.Changed:
		r.unannounced[stream] = struct{}{}
	default:
		delete(r.unannounced, stream)
	}
}

// likesRate is the likes per second since the previous announcement.
func likesRate(total int64, a Announcement, now time.Time, every time.Duration) float64 {
	delta := total - a.Previous
	if delta <= 0 {
		return 0
	}
	window := every
	if !a.PreviousAt.IsZero() {
		window = min(max(now.Sub(a.PreviousAt), every), 2*every)
	}
	return math.Round(float64(delta)/window.Seconds()*10) / 10
}
