package room

import (
	"context"

	"github.com/livehub/livehub/internal/commerce"
)

// ViewersCount is the data of a viewers.count event.
type ViewersCount struct {
	// Count is the connections watching now, on every node.
	Count int `json:"count"`
	// Peak is the highest count seen during the stream.
	Peak int `json:"peak"`
}

// countViewers reads the viewer count of every stream watched through this
// node from the hub's cluster-wide presence, raises the peaks, and announces
// the counts that changed. Every node watching a stream reads it; the
// announcement claim lets one of them publish per interval.
func (r *Room) countViewers(ctx context.Context) {
	channels, err := r.hub.Channels(ctx, "live:")
	if err != nil {
		r.log.Warn("room: list live channels", "err", err)
		return
	}
	for ch, local := range channels {
		if local == 0 || ctx.Err() != nil {
			continue
		}
		stream, ok := liveStream(ch)
		if !ok {
			continue
		}
		st, err := r.streams.get(ctx, stream)
		if err != nil || st.State != commerce.StreamLive {
			continue
		}
		stats, err := r.hub.PresenceStats(ctx, ch)
		if err != nil {
			r.log.Warn("room: presence stats", "channel", ch, "err", err)
			continue
		}
		count := stats.NumClients
		peak, err := r.state.RecordViewers(ctx, stream, count)
		if err != nil {
			r.log.Warn("room: record viewers", "stream", stream, "err", err)
			continue
		}
		a, err := r.state.ClaimAnnouncement(ctx, stream, "viewers", int64(count), r.cfg.ViewersInterval, r.cfg.Now())
		if err != nil {
			r.log.Warn("room: claim viewers announcement", "stream", stream, "err", err)
			continue
		}
		if a.Claimed {
			r.metrics.announcements.WithLabelValues("viewers").Inc()
			r.emit(ctx, EventViewersCount, ViewersCount{Count: count, Peak: peak}, ch)
		}
	}
}
