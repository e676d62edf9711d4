package payment_test

import (
	"context"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/payment"
)

func TestSimulated_CreateChargePointsAtPayEndpoint(t *testing.T) {
	g := payment.Simulated{Now: func() time.Time { return testNow }}
	o := testOrder()
	p, err := g.CreateCharge(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := testNow.Add(15 * time.Minute)
	if g.Name() != "simulated" || p.Gateway != "simulated" || p.Reference != "sim-"+o.ID ||
		p.RedirectURL != "/v1/payments/simulated/"+o.ID+"/pay" || p.ExpiresAt == nil || !p.ExpiresAt.Equal(want) {
		t.Errorf("payment = %+v, expires %v, want %v", p, p.ExpiresAt, want)
	}
}

func TestSimulated_ExpiryConfigurableAndBoundedByReservation(t *testing.T) {
	g := payment.Simulated{Expiry: 2 * time.Minute, Now: func() time.Time { return testNow }}
	o := testOrder()
	p, err := g.CreateCharge(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if want := testNow.Add(2 * time.Minute); !p.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", p.ExpiresAt, want)
	}
	o.ReservedUntil = testNow.Add(time.Minute)
	if p, _ = g.CreateCharge(context.Background(), o); !p.ExpiresAt.Equal(o.ReservedUntil) {
		t.Errorf("ExpiresAt = %v, want the reservation's end %v", p.ExpiresAt, o.ReservedUntil)
	}
	o.ReservedUntil = testNow
	if _, err := g.CreateCharge(context.Background(), o); commerce.ErrorCode(err) != commerce.ECONFLICT {
		t.Errorf("ended reservation: %v, want ECONFLICT", err)
	}
}

func TestSimulated_EscapesOrderIDInURL(t *testing.T) {
	o := testOrder()
	o.ID = "a/b c"
	o.ReservedUntil = time.Time{}
	p, err := payment.Simulated{}.CreateCharge(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if p.RedirectURL != "/v1/payments/simulated/a%2Fb%20c/pay" {
		t.Errorf("RedirectURL = %q", p.RedirectURL)
	}
}

func TestSimulated_SettlementPassesVerifyAmount(t *testing.T) {
	o := testOrder()
	n := payment.Simulated{}.Settlement(o)
	if n.Outcome != payment.OutcomePaid || n.OrderID != o.ID || n.Reference != "sim-"+o.ID {
		t.Errorf("settlement = %+v", n)
	}
	if err := payment.VerifyAmount(n, o); err != nil {
		t.Errorf("VerifyAmount: %v", err)
	}
}
