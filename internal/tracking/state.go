package tracking

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Status is where a delivery is. It only moves forward:
// assigned -> picked_up -> on_the_way -> delivered; cancelled ends it from
// any status before delivered.
type Status string

// Delivery statuses.
const (
	StatusAssigned  Status = "assigned"
	StatusPickedUp  Status = "picked_up"
	StatusOnTheWay  Status = "on_the_way"
	StatusDelivered Status = "delivered"
	StatusCancelled Status = "cancelled"
)

// rank orders the statuses; a transition must raise it. Cancelled ranks
// above every live status and below nothing: it may follow any of them
// but not delivered.
func (s Status) rank() int {
	switch s {
	case StatusAssigned:
		return 1
	case StatusPickedUp:
		return 2
	case StatusOnTheWay:
		return 3
	case StatusDelivered, StatusCancelled:
		return 4
	}
	return 0
}

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool { return s.rank() > 0 }

// Ended reports whether tracking is over: no location is accepted any more.
func (s Status) Ended() bool { return s == StatusDelivered || s == StatusCancelled }

// Address is where the order is delivered.
type Address struct {
	Lat  float64 `json:"lat"`
	Lng  float64 `json:"lng"`
	Text string  `json:"text,omitempty"`
}

// Point is one position the courier's device reported. DeviceTime is the
// device's clock, Unix milliseconds.
type Point struct {
	Lat        float64 `json:"lat"`
	Lng        float64 `json:"lng"`
	Accuracy   float64 `json:"accuracy"`
	Heading    float64 `json:"heading"`
	Speed      float64 `json:"speed"`
	DeviceTime int64   `json:"device_time"`
}

// Assignment is an order's delivery: who carries it where, and how far it is.
type Assignment struct {
	OrderID   string `json:"order_id"`
	CourierID string `json:"courier_id"`
	// BuyerID and MerchantID are copied from the order when it is
	// assigned, so a location does not need a store read to know them.
	BuyerID       string    `json:"buyer_id"`
	MerchantID    string    `json:"merchant_id"`
	Address       Address   `json:"address"`
	Status        Status    `json:"status"`
	ProofPhotoURL string    `json:"proof_photo_url,omitempty"`
	AssignedAt    time.Time `json:"assigned_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Snapshot is an order's tracking state.
type Snapshot struct {
	Assignment
	// Last is the last accepted point; nil before the first one.
	Last *Point
	// LastAt is when the server accepted Last.
	LastAt time.Time
	// PathLen is how many points the path keeps.
	PathLen int
	// Arriving is set once order.arriving has fired.
	Arriving bool
}

// ErrNotAssigned is returned (wrapped) when an order has no courier.
var ErrNotAssigned = errors.New("tracking: no courier is assigned to the order")

// ErrEnded is returned (wrapped) when tracking of the order is over.
var ErrEnded = errors.New("tracking: tracking has ended")

// ErrStale is returned by Append when the last accepted point is no longer
// the one the caller checked against: another point won; check again.
var ErrStale = errors.New("tracking: the last point changed")

// ErrBackward is returned (wrapped) by SetStatus for a transition that does
// not move forward.
var ErrBackward = errors.New("tracking: status may only move forward")

// ThrottledError refuses a point that came sooner than the throttle allows.
type ThrottledError struct {
	// Wait is how long until a point is accepted.
	Wait time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("tracking: too soon; wait %d ms", e.Wait.Milliseconds())
}

// AppendRequest adds points to an order's path after the last accepted one.
type AppendRequest struct {
	OrderID string
	// PrevDeviceTime is the device time of the last accepted point the
	// caller checked the points against; zero when it saw none.
	PrevDeviceTime int64
	// Points, oldest first; the last becomes the last known point.
	Points []Point
	Now    time.Time
	// Throttle, when positive, refuses the points unless Throttle passed
	// since the last accepted point was accepted.
	Throttle time.Duration
	// PathMax bounds the path; older points are dropped.
	PathMax int
}

// State keeps the deliveries: assignment, status, last point, path, the
// arriving flag. MemoryState serves one node; RedisState shares them
// between nodes. Both pass the same test suite.
//
// Every write is one atomic step, so two nodes deciding about two points of
// the same courier never both accept, and order.arriving fires once.
type State interface {
	// Assign records the courier and address of an order. Reassigning is
	// allowed while the status is assigned; later it is ErrBackward, after
	// the end ErrEnded. The status becomes (or stays) assigned.
	Assign(ctx context.Context, a Assignment) (Assignment, error)
	// Get returns an order's tracking state, ErrNotAssigned when none.
	Get(ctx context.Context, orderID string) (Snapshot, error)
	// SetStatus moves the status forward to to, recording proof (when
	// not empty) and at. It returns changed false, and no error, when the
	// status already is to; ErrBackward for a transition that does not
	// move forward; ErrNotAssigned when there is no assignment.
	SetStatus(ctx context.Context, orderID string, to Status, proof string, at time.Time) (a Assignment, changed bool, err error)
	// Append accepts points as one step: tracking must be live (ErrEnded,
	// ErrNotAssigned), the last accepted point must still be the caller's
	// (ErrStale) and the throttle must allow it (*ThrottledError). The last
	// point becomes the last known point and every point joins the path.
	Append(ctx context.Context, r AppendRequest) error
	// Path returns the last n points of the path, oldest first; n <= 0
	// returns all of it.
	Path(ctx context.Context, orderID string, n int) ([]Point, error)
	// MarkArriving sets the arriving flag and reports whether this call
	// set it: true exactly once per order.
	MarkArriving(ctx context.Context, orderID string) (bool, error)
}
