package main

import (
	"io"
	"testing"
	"time"
)

// Sustained checkouts: one a buyer at the rate for the duration, on a sale
// with a unit for each, every one created and none oversold.
func TestCheckout_SustainedRateKeepsItsSchedule(t *testing.T) {
	srv := startServer(t)
	rep := runBench(t, srv, Config{Mode: modeCheckout, Clients: 5, Buyers: 1, Units: 1, SustainRate: 100, Duration: time.Second})
	ck := rep.Checkout
	if ck == nil {
		t.Fatal("no checkout report")
	}
	if ck.Requests != 100 || ck.Buyers != 100 || ck.Units != 100 || ck.TargetRate != 100 || ck.TargetSeconds != 1 {
		t.Errorf("schedule: %d requests by %d buyers for %d units at %g/s for %gs; want 100 each, at 100/s for 1s",
			ck.Requests, ck.Buyers, ck.Units, ck.TargetRate, ck.TargetSeconds)
	}
	if ck.Created != 100 || ck.Sold != 100 || ck.Oversold != 0 || ck.SoldOut != 0 || ck.Limit != 0 || ck.Other != 0 {
		t.Errorf("201 %d, sold_out %d, limit %d, other %d %v, sold %d, oversold %d; want 100 created and sold",
			ck.Created, ck.SoldOut, ck.Limit, ck.Other, ck.OtherDetail, ck.Sold, ck.Oversold)
	}
	// The last checkout is scheduled at 0.99s: the run cannot be shorter.
	if ck.Seconds < 0.99 || ck.PerSecond <= 0 || ck.PerSecond > 101 || ck.Latency.Count != 100 || ck.Latency.P99 <= 0 {
		t.Errorf("figures: %.3fs, %.1f/s, latency %+v", ck.Seconds, ck.PerSecond, ck.Latency)
	}
	if ck.Viewers != 5 || ck.StockLatency.Count == 0 {
		t.Errorf("%d viewers, %d stock events seen; want 5 viewers seeing stock events", ck.Viewers, ck.StockLatency.Count)
	}
}

func TestParseFlags_SustainRate(t *testing.T) {
	cfg, _, err := parseFlags([]string{"checkout", "-sustain-rate", "2500", "-duration", "20s"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != modeCheckout || cfg.SustainRate != 2500 || cfg.Duration != 20*time.Second {
		t.Fatalf("parsed %q at %g/s for %s", cfg.Mode, cfg.SustainRate, cfg.Duration)
	}
}
