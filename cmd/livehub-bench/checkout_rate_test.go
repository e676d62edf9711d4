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

// A node that admits one checkout at a time and lets none wait refuses most
// of a burst with 503 and Retry-After: the tool counts those as shed, apart
// from the other answers, with their own latency.
func TestCheckout_ShedAnswersCountedApart(t *testing.T) {
	srv := startServer(t, "LIVEHUB_CHECKOUT_MAX_IN_FLIGHT=1", "LIVEHUB_CHECKOUT_MAX_WAIT=0")
	rep := runBench(t, srv, Config{Mode: modeCheckout, Clients: 0, Buyers: 100, Units: 100, PerUserLimit: 1, BuyerConns: 100})
	ck := rep.Checkout
	if ck == nil {
		t.Fatal("no checkout report")
	}
	if ck.Shed == 0 || ck.Created == 0 || ck.Created+ck.Shed != 100 || ck.Other != 0 || ck.SoldOut != 0 {
		t.Errorf("201 %d, shed %d, sold_out %d, other %d %v; want every answer 201 or shed, some of each",
			ck.Created, ck.Shed, ck.SoldOut, ck.Other, ck.OtherDetail)
	}
	if ck.CreatedLatency.Count != int64(ck.Created) || ck.ShedLatency.Count != int64(ck.Shed) {
		t.Errorf("latency samples: 201 %d of %d, shed %d of %d", ck.CreatedLatency.Count, ck.Created, ck.ShedLatency.Count, ck.Shed)
	}
	if ck.Sold != ck.Created || ck.Oversold != 0 {
		t.Errorf("sold %d for %d created, oversold %d", ck.Sold, ck.Created, ck.Oversold)
	}
}

func TestParseFlags_ServerEnv(t *testing.T) {
	cfg, _, err := parseFlags([]string{"-spawn-server", "bin/livehub", "-server-env", "LIVEHUB_A=1, LIVEHUB_B=x=y"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.ServerEnv) != 2 || cfg.ServerEnv[0] != "LIVEHUB_A=1" || cfg.ServerEnv[1] != "LIVEHUB_B=x=y" {
		t.Errorf("ServerEnv %q", cfg.ServerEnv)
	}
	for _, args := range [][]string{
		{"-spawn-server", "bin/livehub", "-server-env", "PATH=/tmp"},
		{"-spawn-server", "bin/livehub", "-server-env", "LIVEHUB_A"},
		{"-server-env", "LIVEHUB_A=1"},
	} {
		if _, _, err := parseFlags(args, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
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
