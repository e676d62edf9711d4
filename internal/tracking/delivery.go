package tracking

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// Bounds of the delivery's fields.
const (
	maxIDLength      = 128
	maxAddressLength = 500
	maxURLLength     = 2048
)

// StatusEvent is the data of an order.status event.
type StatusEvent struct {
	OrderID       string    `json:"order_id"`
	Status        Status    `json:"status"`
	CourierID     string    `json:"courier_id"`
	ProofPhotoURL string    `json:"proof_photo_url,omitempty"`
	At            time.Time `json:"at"`
}

// Assign gives a paid order to a courier, with the address to deliver to.
// Only the order's merchant or an admin may; while the delivery is still
// assigned it may be given to another courier.
func (t *Tracker) Assign(ctx context.Context, actor Actor, orderID, courierID string, addr Address) (Assignment, error) {
	switch {
	case courierID == "":
		return Assignment{}, commerce.FieldError("courier_id", "is required")
	case len(courierID) > maxIDLength:
		return Assignment{}, commerce.FieldError("courier_id", "must be at most %d characters", maxIDLength)
	case !(addr.Lat >= -90 && addr.Lat <= 90):
		return Assignment{}, commerce.FieldError("address.lat", "must be between -90 and 90")
	case !(addr.Lng >= -180 && addr.Lng <= 180):
		return Assignment{}, commerce.FieldError("address.lng", "must be between -180 and 180")
	case len(addr.Text) > maxAddressLength:
		return Assignment{}, commerce.FieldError("address.text", "must be at most %d bytes", maxAddressLength)
	}
	o, err := t.cfg.Orders.GetOrder(ctx, orderID)
	if err != nil {
		return Assignment{}, err
	}
	if actor.UserID != o.HostID && !actor.HasRole(roleAdmin) {
		return Assignment{}, commerce.Errorf(commerce.EFORBIDDEN, "only the order's merchant may assign its courier")
	}
	if o.Status != commerce.OrderPaid {
		return Assignment{}, commerce.Errorf(commerce.ECONFLICT, "only paid orders are delivered; the order is %s", o.Status)
	}
	a, err := t.state.Assign(ctx, Assignment{
		OrderID: o.ID, CourierID: courierID, BuyerID: o.BuyerID, MerchantID: o.HostID,
		Address: addr, AssignedAt: t.now(),
	})
	if err != nil {
		return Assignment{}, stateError(err)
	}
	t.emitStatus(ctx, a)
	return a, nil
}

// SetStatus moves the delivery forward: the assigned courier reports
// picked_up, on_the_way, delivered (with an optional proof photo URL) or
// cancelled; the merchant may cancel; an admin may do either. Setting the
// status the delivery already has changes nothing and publishes nothing.
func (t *Tracker) SetStatus(ctx context.Context, actor Actor, orderID string, to Status, proofURL string) (Assignment, error) {
	if !to.Valid() || to == StatusAssigned {
		return Assignment{}, commerce.FieldError("status", "must be picked_up, on_the_way, delivered or cancelled")
	}
	if proofURL != "" {
		if to != StatusDelivered {
			return Assignment{}, commerce.FieldError("proof_photo_url", "goes only with the delivered status")
		}
		if u, err := url.Parse(proofURL); err != nil || len(proofURL) > maxURLLength ||
			(u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return Assignment{}, commerce.FieldError("proof_photo_url", "must be an http(s) URL of at most %d bytes", maxURLLength)
		}
	}
	snap, err := t.state.Get(ctx, orderID)
	if err != nil {
		return Assignment{}, stateError(err)
	}
	isCourier := actor.UserID == snap.CourierID
	isMerchant := actor.UserID == snap.MerchantID
	switch {
	case actor.HasRole(roleAdmin), isCourier:
	case isMerchant && to == StatusCancelled:
	case isMerchant:
		return Assignment{}, commerce.Errorf(commerce.EFORBIDDEN, "the merchant may only cancel the delivery")
	default:
		return Assignment{}, commerce.Errorf(commerce.EFORBIDDEN, "only the assigned courier may change the delivery's status")
	}
	a, changed, err := t.state.SetStatus(ctx, orderID, to, proofURL, t.now())
	if err != nil {
		return Assignment{}, stateError(err)
	}
	if changed {
		t.emitStatus(ctx, a)
	}
	return a, nil
}

func (t *Tracker) emitStatus(ctx context.Context, a Assignment) {
	ev := StatusEvent{OrderID: a.OrderID, Status: a.Status, CourierID: a.CourierID, ProofPhotoURL: a.ProofPhotoURL, At: a.UpdatedAt}
	idem := ""
	if a.Status != StatusAssigned {
		// A status is reached once; an assignment may be repeated for another courier.
		idem = EventOrderStatus + ":" + a.OrderID + ":" + string(a.Status)
	}
	t.emit(ctx, EventOrderStatus, ev, idem, orderChannel(a.OrderID), userChannel(a.BuyerID))
}

// stateError turns a state refusal into the domain error callers see.
func stateError(err error) error {
	var pe *PointError
	var te *ThrottledError
	switch {
	case errors.Is(err, ErrNotAssigned):
		return commerce.Errorf(commerce.ENOTFOUND, "no courier is assigned to this order")
	case errors.Is(err, ErrEnded):
		return commerce.Errorf(commerce.ECONFLICT, "tracking has ended")
	case errors.Is(err, ErrBackward):
		return &commerce.Error{Code: commerce.ECONFLICT, Field: "status", Message: trimPrefix(err.Error())}
	case errors.Is(err, errNotCourier):
		return commerce.Errorf(commerce.EFORBIDDEN, "%s", errNotCourier.Error())
	case errors.As(err, &pe):
		return &commerce.Error{Code: commerce.EINVALID, Field: pe.Field, Message: pe.Message}
	case errors.As(err, &te):
		return commerce.Errorf(commerce.ERATELIMIT, "too many locations; wait %d ms", te.Wait.Milliseconds())
	}
	return err
}

func trimPrefix(s string) string {
	const p = "tracking: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// View is an order's delivery as the apps show it.
type View struct {
	OrderID       string    `json:"order_id"`
	Status        Status    `json:"status"`
	CourierID     string    `json:"courier_id"`
	Address       Address   `json:"address"`
	ProofPhotoURL string    `json:"proof_photo_url,omitempty"`
	AssignedAt    time.Time `json:"assigned_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// LastPoint is the last accepted location; null before the first.
	LastPoint *LastPoint `json:"last_point"`
	// ETASeconds and DistanceMeters are null before the first point (and
	// the ETA while the courier is not moving).
	ETASeconds     *int `json:"eta_seconds"`
	DistanceMeters *int `json:"distance_meters"`
	PathLength     int  `json:"path_length"`
	Arriving       bool `json:"arriving"`
}

// LastPoint is the last accepted location and when the server accepted it.
type LastPoint struct {
	Point
	ReceivedAt time.Time `json:"received_at"`
}

// View returns the order's delivery to its buyer, its merchant, its
// courier or an admin.
func (t *Tracker) View(ctx context.Context, actor Actor, orderID string) (View, error) {
	if !actor.HasRole(roleAdmin) {
		ok, err := t.party(ctx, orderID, actor.UserID)
		if err != nil {
			return View{}, err
		}
		if !ok {
			// Whether the order exists is not told to strangers.
			return View{}, commerce.Errorf(commerce.ENOTFOUND, "no such order")
		}
	}
	snap, err := t.state.Get(ctx, orderID)
	if err != nil {
		return View{}, stateError(err)
	}
	v := View{
		OrderID: snap.OrderID, Status: snap.Status, CourierID: snap.CourierID, Address: snap.Address,
		ProofPhotoURL: snap.ProofPhotoURL, AssignedAt: snap.AssignedAt, UpdatedAt: snap.UpdatedAt,
		PathLength: snap.PathLen, Arriving: snap.Arriving,
	}
	if snap.Last != nil {
		v.LastPoint = &LastPoint{Point: *snap.Last, ReceivedAt: snap.LastAt}
		recent, err := t.state.Path(ctx, orderID, recentPoints)
		if err != nil {
			return View{}, err
		}
		if len(recent) == 0 || recent[len(recent)-1] != *snap.Last {
			recent = append(recent, *snap.Last)
		}
		loc := t.location(snap.Address, recent)
		v.ETASeconds, v.DistanceMeters = loc.ETASeconds, &loc.DistanceMeters
	}
	return v, nil
}
