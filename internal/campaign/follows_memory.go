package campaign

import (
	"context"
	"slices"
	"sync"
)

var _ Follows = (*MemoryFollows)(nil)

// MemoryFollows is Follows in the process's memory, for one node and tests.
type MemoryFollows struct {
	mu sync.RWMutex
	// hosts holds each host's followers, sorted, so Page is a binary search.
	hosts map[string][]string
}

// NewMemoryFollows returns an empty MemoryFollows.
func NewMemoryFollows() *MemoryFollows {
	return &MemoryFollows{hosts: make(map[string][]string)}
}

// Follow makes user a follower of host.
func (f *MemoryFollows) Follow(ctx context.Context, host, user string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkFollow(host, user); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	users := f.hosts[host]
	i, found := slices.BinarySearch(users, user)
	if !found {
		f.hosts[host] = slices.Insert(users, i, user)
	}
	return nil
}

// Unfollow stops user following host.
func (f *MemoryFollows) Unfollow(ctx context.Context, host, user string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	users := f.hosts[host]
	i, found := slices.BinarySearch(users, user)
	if !found {
		return nil
	}
	users = slices.Delete(users, i, i+1)
	if len(users) == 0 {
		delete(f.hosts, host)
		return nil
	}
	f.hosts[host] = users
	return nil
}

// IsFollowing reports whether user follows host.
func (f *MemoryFollows) IsFollowing(ctx context.Context, host, user string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, found := slices.BinarySearch(f.hosts[host], user)
	return found, nil
}

// Count returns the number of host's followers.
func (f *MemoryFollows) Count(ctx context.Context, host string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return int64(len(f.hosts[host])), nil
}

// Page returns up to n followers of host after cursor.
func (f *MemoryFollows) Page(ctx context.Context, host, cursor string, n int) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	n = max(n, 1)
	f.mu.RLock()
	defer f.mu.RUnlock()
	users := f.hosts[host]
	i, found := slices.BinarySearch(users, cursor)
	if found {
		i++
	}
	end := min(i+n, len(users))
	page := slices.Clone(users[i:end])
	next := ""
	if end < len(users) {
		next = page[len(page)-1]
	}
	return page, next, nil
}
