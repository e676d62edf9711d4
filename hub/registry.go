package hub

import (
	"context"
	"time"
)

// NodeInfo describes one running node of the cluster.
type NodeInfo struct {
	ID          string `json:"uid"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	NumClients  int    `json:"num_clients"`
	NumUsers    int    `json:"num_users"`
	NumSubs     int    `json:"num_subs"`
	NumChannels int    `json:"num_channels"`
	Uptime      int64  `json:"uptime"`
	// UpdatedAt is when the node last reported, in Unix seconds.
	UpdatedAt int64 `json:"updated_at"`
}

// NodeRegistry keeps the cluster's nodes. Every node reports itself
// periodically; a node that stops reporting drops out after ttl.
type NodeRegistry interface {
	// UpdateNode records the node's latest figures for at most ttl.
	UpdateNode(ctx context.Context, info NodeInfo, ttl time.Duration) error
	// RemoveNode drops the node at shutdown.
	RemoveNode(ctx context.Context, id string) error
	// Nodes lists the live nodes.
	Nodes(ctx context.Context) ([]NodeInfo, error)
}
