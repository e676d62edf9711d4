package redisengine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/redis/go-redis/v9"
)

// UpdateNode records the node's figures; the node drops out of Nodes when it
// has not reported for ttl.
func (e *Engine) UpdateNode(ctx context.Context, info hub.NodeInfo, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("redisengine: update node: %w", err)
	}
	if ttl < 0 {
		ttl = 0
	}
	err = nodeUpdateScript.Run(ctx, e.client, e.keys.nodes(), info.ID, b, millis(ttl)).Err()
	return e.wrap(ctx, "update node", err)
}

// RemoveNode drops the node at once.
func (e *Engine) RemoveNode(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	keys := e.keys.nodes()
	_, err := e.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, keys[0], id)
		p.HDel(ctx, keys[1], id)
		return nil
	})
	return e.wrap(ctx, "remove node", err)
}

// Nodes lists the nodes that reported within their TTL, sorted by ID.
func (e *Engine) Nodes(ctx context.Context) ([]hub.NodeInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := nodesScript.Run(ctx, e.client, e.keys.nodes()).StringSlice()
	if err != nil {
		return nil, e.wrap(ctx, "nodes", err)
	}
	out := make([]hub.NodeInfo, 0, len(res))
	for _, s := range res {
		var n hub.NodeInfo
		if err := json.Unmarshal([]byte(s), &n); err != nil {
			return nil, fmt.Errorf("redisengine: nodes: %w", err)
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
