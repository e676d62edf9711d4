package redisengine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/livehub/livehub/hub"
)

// Presence returns the channel's live connections, dropping expired ones
// first.
func (e *Engine) Presence(ctx context.Context, channel string) (map[string]*hub.ClientInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := presenceGetScript.Run(ctx, e.client, e.keys.presence(channel)).StringSlice()
	if err != nil {
		return nil, e.wrap(ctx, "presence", err)
	}
	out := make(map[string]*hub.ClientInfo, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		var info hub.ClientInfo
		if err := json.Unmarshal([]byte(res[i+1]), &info); err != nil {
			return nil, fmt.Errorf("redisengine: presence of %q: %w", channel, err)
		}
		out[res[i]] = &info
	}
	return out, nil
}

// PresenceStats counts the channel's live connections and distinct users
// from the hash lengths, without reading the entries.
func (e *Engine) PresenceStats(ctx context.Context, channel string) (hub.PresenceStats, error) {
	if err := ctx.Err(); err != nil {
		return hub.PresenceStats{}, err
	}
	res, err := presenceStatsScript.Run(ctx, e.client, e.keys.presence(channel)).Int64Slice()
	if err != nil {
		return hub.PresenceStats{}, e.wrap(ctx, "presence stats", err)
	}
	if len(res) != 2 {
		return hub.PresenceStats{}, fmt.Errorf("redisengine: presence stats: unexpected reply %v", res)
	}
	return hub.PresenceStats{NumClients: int(res[0]), NumUsers: int(res[1])}, nil
}

// AddPresence adds the connection or refreshes it for another PresenceTTL.
func (e *Engine) AddPresence(ctx context.Context, channel, clientID string, info *hub.ClientInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if info == nil {
		info = &hub.ClientInfo{ClientID: clientID}
	}
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("redisengine: add presence: %w", err)
	}
	err = presenceAddScript.Run(ctx, e.client, e.keys.presence(channel),
		clientID, b, info.UserID, millis(e.opts.PresenceTTL)).Err()
	return e.wrap(ctx, "add presence", err)
}

// RemovePresence removes the connection. The user count is kept from the
// stored entry, so userID is not needed.
func (e *Engine) RemovePresence(ctx context.Context, channel, clientID, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := presenceRemoveScript.Run(ctx, e.client, e.keys.presence(channel), clientID).Err()
	return e.wrap(ctx, "remove presence", err)
}
