// Package tracking follows a paid order from the merchant to the buyer: the
// merchant assigns a courier and the delivery address, the courier moves the
// delivery's status forward (assigned -> picked_up -> on_the_way ->
// delivered, or cancelled) and publishes its location on order:{orderID}.
//
// The tracker plugs into the hub through hub.Hooks (Tracker.Hooks): Grant
// opens order:{id} to the order's buyer, its merchant (the stream's host)
// and its assigned courier (admins pass by role); OnPublish takes the
// courier's {"lat","lng","accuracy","heading","speed","device_time"} and
// checks it (ranges, a device time after the last accepted one, a speed a
// vehicle can reach, at most one point per MinInterval) before turning it
// into a courier.location event with the distance to the address and an
// ETA. A courier back from a dead zone posts its stored points as a batch
// (Batch): every point is checked in order and kept in the path, and only
// the newest is published.
//
// Last known position on subscribe: courier.location events are ordinary
// publications of order:{id}, which keeps history (50 entries, 24h) with
// forced recovery, so an app that subscribes reads the channel's history
// and finds the last position there without waiting for the next point.
// For apps that open the order screen before they subscribe, or after the
// history window, View returns the whole picture (status, courier, last
// point, ETA, path length), served at GET /v1/orders/{id}/tracking.
//
// Events, in commerce.Event envelopes: courier.location on order:{id};
// order.status {order_id, status, courier_id, proof_photo_url?, at} and
// order.arriving {order_id, courier_id, distance_meters, eta_seconds, at}
// (once per order, when the courier comes within ArrivalMeters) on
// order:{id} and the buyer's user:#{buyer}. order.arriving is published
// while the point that triggered it is being checked, so it may reach
// subscribers just before that point's courier.location.
//
// State keeps the deliveries: MemoryState for one node, RedisState for many.
package tracking

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/commerce"
)

// Event types of the tracker.
const (
	EventCourierLocation = "courier.location"
	EventOrderStatus     = "order.status"
	EventOrderArriving   = "order.arriving"
)

var _ Hub = (*hub.Node)(nil)

// Hub is what the tracker needs of the hub node: *hub.Node provides it.
type Hub interface {
	Publish(ctx context.Context, channel string, data []byte, req hub.PublishRequest) (hub.StreamPosition, error)
}

// Orders finds orders: commerce.Store provides it.
type Orders interface {
	GetOrder(ctx context.Context, id string) (commerce.Order, error)
}

// Actor is who calls the tracker outside the socket: the user of a verified token.
type Actor struct {
	UserID string
	Roles  []string
}

// HasRole reports whether the actor holds role r.
func (a Actor) HasRole(r string) bool {
	for _, have := range a.Roles {
		if have == r {
			return true
		}
	}
	return false
}

// roleAdmin passes every access check of the tracker.
const roleAdmin = "admin"

// Config configures a Tracker. Zero values take the defaults given per field.
type Config struct {
	// Orders tells who bought an order, from which merchant, and whether it is paid.
	Orders Orders
	// State keeps the deliveries. Nil means a new MemoryState (one node only).
	State State
	// Hub is the node events are published through. The node is built
	// with the tracker's hooks, so it may not exist yet: leave it nil and
	// call Bind once it does.
	Hub Hub
	// MinInterval is the least time between two live points of an order;
	// a point sooner is refused with "wait N ms". Zero means 2s.
	MinInterval time.Duration
	// MaxSpeedKmh bounds the speed between two consecutive points. Zero
	// means 150 km/h.
	MaxSpeedKmh float64
	// ArrivalMeters is how close to the address order.arriving fires. Zero
	// means 200 m.
	ArrivalMeters float64
	// PathMax bounds the points kept per order; older ones are dropped.
	// Zero means 500.
	PathMax int
	// MaxBatch bounds the points of one batch. Zero means 1000.
	MaxBatch int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives what went wrong. Nil means slog.Default().
	Logger *slog.Logger
}

// Tracker runs courier tracking on this node.
type Tracker struct {
	cfg   Config
	state State
	log   *slog.Logger
	// hub is set once by Bind, before the node serves connections.
	hub Hub
}

// New returns a Tracker.
func New(cfg Config) (*Tracker, error) {
	if cfg.Orders == nil {
		return nil, errors.New("tracking: Orders is required")
	}
	if cfg.State == nil {
		cfg.State = NewMemoryState()
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = 2 * time.Second
	}
	if cfg.MaxSpeedKmh <= 0 {
		cfg.MaxSpeedKmh = 150
	}
	if cfg.ArrivalMeters <= 0 {
		cfg.ArrivalMeters = 200
	}
	if cfg.PathMax <= 0 {
		cfg.PathMax = 500
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Tracker{cfg: cfg, state: cfg.State, log: cfg.Logger, hub: cfg.Hub}, nil
}

// Bind gives the tracker the hub node it publishes through; call it before
// the node serves connections.
func (t *Tracker) Bind(h Hub) { t.hub = h }

// now is the clock in whole milliseconds, as the state keeps it.
func (t *Tracker) now() time.Time { return time.UnixMilli(t.cfg.Now().UnixMilli()).UTC() }

func orderChannel(id string) string { return "order:" + id }
func userChannel(id string) string  { return "user:#" + id }

func orderOf(channel string) (string, bool) {
	id, ok := strings.CutPrefix(channel, "order:")
	return id, ok && id != ""
}

// Hooks returns next with the tracker's hooks added: Grant and OnPublish for
// order: channels; other channels go to next's hooks.
func (t *Tracker) Hooks(next hub.Hooks) hub.Hooks {
	out := next
	nextGrant, nextPublish := next.Grant, next.OnPublish
	out.Grant = func(ctx context.Context, c *hub.Client, channel string) (bool, error) {
		if _, ok := orderOf(channel); ok {
			return t.Grant(ctx, c, channel)
		}
		if nextGrant == nil {
			return false, nil
		}
		return nextGrant(ctx, c, channel)
	}
	out.OnPublish = func(ctx context.Context, c *hub.Client, channel string, data []byte) ([]byte, error) {
		if _, ok := orderOf(channel); ok {
			return t.OnPublish(ctx, c, channel, data)
		}
		if nextPublish == nil {
			return data, nil
		}
		return nextPublish(ctx, c, channel, data)
	}
	return out
}

// Grant opens order:{id} to the order's buyer, its merchant and its
// assigned courier.
func (t *Tracker) Grant(ctx context.Context, c *hub.Client, channel string) (bool, error) {
	id, ok := orderOf(channel)
	user := c.Credentials().UserID
	if !ok || user == "" {
		return false, nil
	}
	return t.party(ctx, id, user)
}

// party reports whether user is the buyer, the merchant or the assigned
// courier of the order.
func (t *Tracker) party(ctx context.Context, orderID, user string) (bool, error) {
	o, err := t.cfg.Orders.GetOrder(ctx, orderID)
	if commerce.ErrorCode(err) == commerce.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		t.log.Warn("tracking: read order", "order", orderID, "err", err)
		return false, hub.ErrorInternal
	}
	if user == o.BuyerID || user == o.HostID {
		return true, nil
	}
	snap, err := t.state.Get(ctx, orderID)
	if errors.Is(err, ErrNotAssigned) {
		return false, nil
	}
	if err != nil {
		t.log.Warn("tracking: read delivery", "order", orderID, "err", err)
		return false, hub.ErrorInternal
	}
	return snap.CourierID == user, nil
}

// OnPublish checks a location the courier publishes on order:{id} and
// returns the courier.location event that is published instead.
func (t *Tracker) OnPublish(ctx context.Context, c *hub.Client, channel string, data []byte) ([]byte, error) {
	id, ok := orderOf(channel)
	if !ok {
		return data, nil
	}
	p, err := ParsePoint(data)
	if err != nil {
		return nil, hub.ErrorBadRequest.WithMessage(err.Error())
	}
	ev, err := t.live(ctx, c.Credentials().UserID, id, p)
	if err != nil {
		return nil, t.socketError(id, err)
	}
	return ev, nil
}

// errNotCourier refuses a location from anyone but the assigned courier.
var errNotCourier = errors.New("only the courier assigned to this order may send its location")

// socketError turns a refusal into the protocol error the courier app sees.
func (t *Tracker) socketError(orderID string, err error) error {
	var pe *PointError
	var te *ThrottledError
	switch {
	case errors.As(err, &pe):
		return hub.ErrorBadRequest.WithMessage(pe.Error())
	case errors.As(err, &te):
		return hub.ErrorTooManyRequests.WithMessage("too many locations; wait " + strconv.FormatInt(max(te.Wait.Milliseconds(), 1), 10) + " ms")
	case errors.Is(err, errNotCourier):
		return hub.ErrorPermissionDenied.WithMessage(errNotCourier.Error())
	case errors.Is(err, ErrEnded):
		return hub.ErrorPermissionDenied.WithMessage("tracking has ended")
	case errors.Is(err, ErrNotAssigned):
		return hub.ErrorPermissionDenied.WithMessage("no courier is assigned to this order")
	}
	t.log.Warn("tracking: accept location", "order", orderID, "err", err)
	return hub.ErrorInternal
}

// maxAttempts bounds the retries of a point that lost a race with another.
const maxAttempts = 5

// live accepts one live point of courier for the order and returns the
// courier.location event to publish.
func (t *Tracker) live(ctx context.Context, courier, orderID string, p Point) ([]byte, error) {
	for range maxAttempts {
		snap, err := t.state.Get(ctx, orderID)
		if err != nil {
			return nil, err
		}
		if snap.CourierID != courier {
			return nil, errNotCourier
		}
		if snap.Status.Ended() {
			return nil, ErrEnded
		}
		if err := follow(snap.Last, p, t.cfg.MaxSpeedKmh); err != nil {
			return nil, err
		}
		// The path before the point, for the recent average speed.
		recent, err := t.state.Path(ctx, orderID, recentPoints-1)
		if err != nil {
			return nil, err
		}
		err = t.state.Append(ctx, AppendRequest{
			OrderID: orderID, PrevDeviceTime: deviceTime(snap.Last), Points: []Point{p},
			Now: t.now(), Throttle: t.cfg.MinInterval, PathMax: t.cfg.PathMax,
		})
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return nil, err
		}
		loc := t.location(snap.Address, append(recent, p))
		t.maybeArriving(ctx, snap.Assignment, []Point{p}, loc)
		return t.event(EventCourierLocation, loc)
	}
	return nil, hub.ErrorTooManyRequests.WithMessage("too many locations at once; try again")
}

func deviceTime(p *Point) int64 {
	if p == nil {
		return 0
	}
	return p.DeviceTime
}

// Location is the data of a courier.location event.
type Location struct {
	Lat        float64 `json:"lat"`
	Lng        float64 `json:"lng"`
	Accuracy   float64 `json:"accuracy"`
	Heading    float64 `json:"heading"`
	Speed      float64 `json:"speed"`
	DeviceTime int64   `json:"device_time"`
	// ETASeconds is the distance left over the recent average speed; null
	// when the courier has not been moving.
	ETASeconds *int `json:"eta_seconds"`
	// DistanceMeters is the straight-line distance to the address.
	DistanceMeters int `json:"distance_meters"`
}

// ETA inputs: the average speed is taken over the last recentPoints points
// within recentWindow of device time; below minMovingSpeed the courier is
// standing and no ETA is given.
const (
	recentPoints   = 10
	recentWindow   = 5 * time.Minute
	minMovingSpeed = 0.5 // m/s
)

// location builds the event data of the newest point of path.
func (t *Tracker) location(addr Address, path []Point) Location {
	p := path[len(path)-1]
	dist := distanceMeters(p.Lat, p.Lng, addr.Lat, addr.Lng)
	loc := Location{
		Lat: p.Lat, Lng: p.Lng, Accuracy: p.Accuracy, Heading: p.Heading, Speed: p.Speed,
		DeviceTime: p.DeviceTime, DistanceMeters: int(dist + 0.5),
	}
	if v := averageSpeed(path); v >= minMovingSpeed {
		eta := int(dist/v + 0.5)
		loc.ETASeconds = &eta
	}
	return loc
}

// averageSpeed is the distance over the time of the recent points of path, m/s.
func averageSpeed(path []Point) float64 {
	if len(path) > recentPoints {
		path = path[len(path)-recentPoints:]
	}
	last := path[len(path)-1]
	first := len(path) - 1
	for first > 0 && last.DeviceTime-path[first-1].DeviceTime <= recentWindow.Milliseconds() {
		first--
	}
	var meters float64
	for i := first + 1; i < len(path); i++ {
		meters += distanceMeters(path[i-1].Lat, path[i-1].Lng, path[i].Lat, path[i].Lng)
	}
	secs := float64(last.DeviceTime-path[first].DeviceTime) / 1000
	if secs <= 0 {
		return last.Speed
	}
	return meters / secs
}

// maybeArriving fires order.arriving once, when one of the accepted points
// is within ArrivalMeters of the address.
func (t *Tracker) maybeArriving(ctx context.Context, a Assignment, pts []Point, loc Location) {
	near := false
	for _, p := range pts {
		if distanceMeters(p.Lat, p.Lng, a.Address.Lat, a.Address.Lng) <= t.cfg.ArrivalMeters {
			near = true
			break
		}
	}
	if !near {
		return
	}
	first, err := t.state.MarkArriving(ctx, a.OrderID)
	if err != nil {
		t.log.Warn("tracking: mark arriving", "order", a.OrderID, "err", err)
		return
	}
	if !first {
		return
	}
	t.emit(ctx, EventOrderArriving, map[string]any{
		"order_id": a.OrderID, "courier_id": a.CourierID,
		"distance_meters": loc.DistanceMeters, "eta_seconds": loc.ETASeconds, "at": t.now(),
	}, EventOrderArriving+":"+a.OrderID, orderChannel(a.OrderID), userChannel(a.BuyerID))
}

// event encodes an envelope.
func (t *Tracker) event(typ string, data any) ([]byte, error) {
	ev, err := commerce.NewEvent(typ, t.now(), data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(ev)
}

// emit publishes an event into channels. The state already changed, so a
// failed publish is logged and does not undo it.
func (t *Tracker) emit(ctx context.Context, typ string, data any, idem string, channels ...string) {
	b, err := t.event(typ, data)
	if err != nil {
		t.log.Error("tracking: encode event", "type", typ, "err", err)
		return
	}
	if t.hub == nil {
		t.log.Error("tracking: no hub bound; event dropped", "type", typ)
		return
	}
	for _, ch := range channels {
		req := hub.PublishRequest{}
		if typ == EventCourierLocation {
			// Superseded by the next position.
			req.Priority = hub.PriorityLow
		}
		if idem != "" {
			req.IdempotencyKey = idem + "@" + ch
		}
		if _, err := t.hub.Publish(ctx, ch, b, req); err != nil {
			t.log.Warn("tracking: publish event", "type", typ, "channel", ch, "err", err)
		}
	}
}
