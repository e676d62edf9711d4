package room

import (
	"context"
)

// StreamSummary is what the room adds to a stream's end summary.
type StreamSummary struct {
	PeakViewers int   `json:"peak_viewers"`
	Likes       int64 `json:"likes"`
}

// Summary returns a stream's viewer peak and likes total. This node's
// uncounted taps are added first; other nodes' are at most one likes
// interval old.
func (r *Room) Summary(ctx context.Context, stream string) (StreamSummary, error) {
	r.flushMu.Lock()
	r.likesMu.Lock()
	n := r.pending[stream]
	delete(r.pending, stream)
	r.likesMu.Unlock()
	likes, err := r.state.AddLikes(ctx, stream, n)
	if err != nil {
		r.restorePending(stream, n)
	} else if n != 0 {
		// The ticker announces the new total.
		r.unannounced[stream] = struct{}{}
	}
	r.flushMu.Unlock()
	if err != nil {
		return StreamSummary{}, err
	}
	peak, err := r.state.RecordViewers(ctx, stream, 0)
	if err != nil {
		return StreamSummary{}, err
	}
	return StreamSummary{PeakViewers: peak, Likes: likes}, nil
}

// Info is a room's public state, for a viewer who joins late: what is pinned,
// whether slow mode is on, and the counters.
type Info struct {
	StreamID        string         `json:"stream_id"`
	SlowModeSeconds int            `json:"slow_mode_seconds"`
	PinnedMessage   *PinnedMessage `json:"pinned_message"`
	PinnedProduct   *PinnedProduct `json:"pinned_product"`
	Likes           int64          `json:"likes"`
	ViewerPeak      int            `json:"viewer_peak"`
}

// Info returns the stream's public room state.
func (r *Room) Info(ctx context.Context, stream string) (Info, error) {
	if _, err := r.streams.get(ctx, stream); err != nil {
		return Info{}, err
	}
	s, err := r.state.Snapshot(ctx, stream, r.cfg.Now())
	if err != nil {
		return Info{}, err
	}
	return Info{
		StreamID: stream, SlowModeSeconds: s.SlowModeSeconds,
		PinnedMessage: s.PinnedMessage, PinnedProduct: s.PinnedProduct,
		Likes: s.Likes, ViewerPeak: s.ViewerPeak,
	}, nil
}
