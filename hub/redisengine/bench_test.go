package redisengine_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/hubtest"
	"github.com/livehub/livehub/internal/redistest"
)

// BenchmarkEngine_PublishDelivered measures a publication with history from
// Publish to the handler of a subscribed node, over a unix socket.
func BenchmarkEngine_PublishDelivered(b *testing.B) {
	srv := redistest.Start(b)
	e := newEngine(b, srv.URL)
	rec := hubtest.StartRun(b, e)
	ctx := context.Background()
	ch := "bench-" + hubtest.RandomName()
	if err := e.Subscribe(ctx, ch); err != nil {
		b.Fatal(err)
	}
	data := []byte(`{"type":"chat.message","v":1,"data":{"text":"hello"}}`)
	opts := hub.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute, ClientInfo: &hub.ClientInfo{ClientID: "c", UserID: "u"}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := e.Publish(ctx, ch, data, opts); err != nil {
			b.Fatal(err)
		}
	}
	rec.WaitPublications(b, ch, b.N)
	b.StopTimer()
}

// BenchmarkEngine_History measures reading the last 10 of 100 publications.
func BenchmarkEngine_History(b *testing.B) {
	srv := redistest.Start(b)
	e := newEngine(b, srv.URL)
	ctx := context.Background()
	ch := "bench-" + hubtest.RandomName()
	for i := 0; i < 100; i++ {
		if _, _, err := e.Publish(ctx, ch, []byte(strconv.Itoa(i)), hub.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
	since := &hub.StreamPosition{Offset: 90}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pubs, _, err := e.History(ctx, ch, hub.HistoryOptions{Since: since, Limit: -1})
		if err != nil || len(pubs) != 10 {
			b.Fatalf("%d pubs, %v", len(pubs), err)
		}
	}
}
