package tracking

import (
	"context"
	"fmt"
	"sync"
	"time"
)

var _ State = (*MemoryState)(nil)

// MemoryState is a State in memory, for one node. Paths are bounded by the
// PathMax of each Append; assignments stay until the process ends.
type MemoryState struct {
	mu     sync.Mutex
	orders map[string]*memOrder
}

type memOrder struct {
	a        Assignment
	last     *Point
	lastAt   time.Time
	path     []Point
	arriving bool
}

// NewMemoryState returns an empty MemoryState.
func NewMemoryState() *MemoryState { return &MemoryState{orders: make(map[string]*memOrder)} }

// Assign implements State.
func (s *MemoryState) Assign(_ context.Context, a Assignment) (Assignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[a.OrderID]
	if !ok {
		o = &memOrder{}
		s.orders[a.OrderID] = o
		o.a.AssignedAt = a.AssignedAt
	} else if err := reassignable(o.a.Status); err != nil {
		return Assignment{}, err
	}
	assigned := o.a.AssignedAt
	o.a = a
	o.a.Status = StatusAssigned
	o.a.AssignedAt = assigned
	o.a.UpdatedAt = a.AssignedAt
	return o.a, nil
}

func reassignable(st Status) error {
	switch {
	case st.Ended():
		return fmt.Errorf("%w (%s)", ErrEnded, st)
	case st != StatusAssigned:
		return fmt.Errorf("%w: the order is already %s", ErrBackward, st)
	}
	return nil
}

// Get implements State.
func (s *MemoryState) Get(_ context.Context, orderID string) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderID]
	if !ok {
		return Snapshot{}, ErrNotAssigned
	}
	snap := Snapshot{Assignment: o.a, LastAt: o.lastAt, PathLen: len(o.path), Arriving: o.arriving}
	if o.last != nil {
		p := *o.last
		snap.Last = &p
	}
	return snap, nil
}

// SetStatus implements State.
func (s *MemoryState) SetStatus(_ context.Context, orderID string, to Status, proof string, at time.Time) (Assignment, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderID]
	if !ok {
		return Assignment{}, false, ErrNotAssigned
	}
	if o.a.Status == to {
		return o.a, false, nil
	}
	if err := forward(o.a.Status, to); err != nil {
		return o.a, false, err
	}
	o.a.Status = to
	if proof != "" {
		o.a.ProofPhotoURL = proof
	}
	o.a.UpdatedAt = at
	return o.a, true, nil
}

func forward(from, to Status) error {
	if from.Ended() {
		return fmt.Errorf("%w: the order is already %s", ErrBackward, from)
	}
	if to.rank() <= from.rank() {
		return fmt.Errorf("%w: the order is already %s", ErrBackward, from)
	}
	return nil
}

// Append implements State.
func (s *MemoryState) Append(_ context.Context, r AppendRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[r.OrderID]
	if !ok {
		return ErrNotAssigned
	}
	if o.a.Status.Ended() {
		return ErrEnded
	}
	var prev int64
	if o.last != nil {
		prev = o.last.DeviceTime
	}
	if prev != r.PrevDeviceTime {
		return ErrStale
	}
	if r.Throttle > 0 && o.last != nil {
		if wait := o.lastAt.Add(r.Throttle).Sub(r.Now); wait > 0 {
			return &ThrottledError{Wait: wait}
		}
	}
	if len(r.Points) == 0 {
		return nil
	}
	last := r.Points[len(r.Points)-1]
	o.last, o.lastAt = &last, r.Now
	o.path = append(o.path, r.Points...)
	if r.PathMax > 0 && len(o.path) > r.PathMax {
		o.path = append([]Point(nil), o.path[len(o.path)-r.PathMax:]...)
	}
	return nil
}

// Path implements State.
func (s *MemoryState) Path(_ context.Context, orderID string, n int) ([]Point, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderID]
	if !ok {
		return nil, nil
	}
	p := o.path
	if n > 0 && len(p) > n {
		p = p[len(p)-n:]
	}
	return append([]Point(nil), p...), nil
}

// MarkArriving implements State.
func (s *MemoryState) MarkArriving(_ context.Context, orderID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderID]
	if !ok {
		return false, ErrNotAssigned
	}
	if o.arriving {
		return false, nil
	}
	o.arriving = true
	return true, nil
}
