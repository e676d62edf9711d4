package commercetest

import (
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

func testStreams(t *testing.T, st commerce.Store) {
	s := commerce.Stream{ID: "str_1", HostID: "host1", Title: "Night market", State: commerce.StreamLive, CreatedAt: T0}
	must(t, st.CreateStream(ctx(t), s))
	wantCode(t, st.CreateStream(ctx(t), s), commerce.ECONFLICT)

	got, err := st.GetStream(ctx(t), s.ID)
	must(t, err)
	if !got.CreatedAt.Equal(s.CreatedAt) || got.EndedAt != nil {
		t.Fatalf("GetStream times: %+v", got)
	}
	got.CreatedAt = s.CreatedAt
	if got != s {
		t.Fatalf("GetStream = %+v, want %+v", got, s)
	}
	_, err = st.GetStream(ctx(t), "str_none")
	wantCode(t, err, commerce.ENOTFOUND)

	at := T0.Add(90 * time.Minute)
	ended, err := st.EndStream(ctx(t), s.ID, at)
	must(t, err)
	if ended.State != commerce.StreamEnded || !timeEq(ended.EndedAt, &at) || ended.HostID != s.HostID {
		t.Fatalf("EndStream = %+v", ended)
	}
	got, err = st.GetStream(ctx(t), s.ID)
	must(t, err)
	if got.State != commerce.StreamEnded || !timeEq(got.EndedAt, &at) {
		t.Fatalf("GetStream after end = %+v", got)
	}
	_, err = st.EndStream(ctx(t), s.ID, at.Add(time.Minute))
	wantCode(t, err, commerce.ECONFLICT)
	_, err = st.EndStream(ctx(t), "str_none", at)
	wantCode(t, err, commerce.ENOTFOUND)
}

func testFlashSales(t *testing.T, st commerce.Store) {
	f := newFixture(t, st)

	t.Run("GetReturnsFullStock", func(t *testing.T) {
		got, err := st.GetFlashSale(ctx(t), f.sale.ID)
		must(t, err)
		want := f.sale
		if !got.StartsAt.Equal(want.StartsAt) || !got.EndsAt.Equal(want.EndsAt) || got.EndedAt != nil {
			t.Fatalf("GetFlashSale times: %+v", got)
		}
		got.StartsAt, got.EndsAt = want.StartsAt, want.EndsAt
		if got != want {
			t.Fatalf("GetFlashSale = %+v, want %+v", got, want)
		}
		_, err = st.GetFlashSale(ctx(t), "fs_none")
		wantCode(t, err, commerce.ENOTFOUND)
	})

	t.Run("CreateIgnoresCallerStock", func(t *testing.T) {
		s := f.addSale(t, "fs_stock", func(s *commerce.FlashSale) {
			s.StockLeft, s.Sold, s.EndedAt = 3, 7, ptr(T0)
		})
		got, err := st.GetFlashSale(ctx(t), s.ID)
		must(t, err)
		if got.StockLeft != s.Quantity || got.Sold != 0 || got.EndedAt != nil {
			t.Fatalf("new sale = %+v, want full stock, nothing sold, not ended", got)
		}
	})

	t.Run("CreateRefusesDuplicatesAndBadFields", func(t *testing.T) {
		wantCode(t, st.CreateFlashSale(ctx(t), f.sale), commerce.ECONFLICT)
		for name, edit := range map[string]func(*commerce.FlashSale){
			"no id":         func(s *commerce.FlashSale) { s.ID = "" },
			"no stream":     func(s *commerce.FlashSale) { s.StreamID = "" },
			"zero quantity": func(s *commerce.FlashSale) { s.Quantity = 0 },
			"zero limit":    func(s *commerce.FlashSale) { s.PerUserLimit = 0 },
			"negative price": func(s *commerce.FlashSale) {
				s.Price = -1
			},
			"ends before start": func(s *commerce.FlashSale) { s.EndsAt = s.StartsAt },
		} {
			s := f.sale
			s.ID = "fs_bad"
			edit(&s)
			if err := st.CreateFlashSale(ctx(t), s); commerce.ErrorCode(err) != commerce.EINVALID {
				t.Errorf("%s: CreateFlashSale = %v, want %s", name, err, commerce.EINVALID)
			}
		}
	})

	t.Run("ListInCreationOrder", func(t *testing.T) {
		f := newFixture(t, st)
		f.addSale(t, "fs_0c")
		f.addSale(t, "fs_0a", func(s *commerce.FlashSale) { s.StartsAt = T0.Add(-time.Hour) })
		got, err := st.ListFlashSales(ctx(t), f.stream.ID)
		must(t, err)
		var ids []string
		for _, s := range got {
			ids = append(ids, s.ID)
			if s.StreamID != f.stream.ID {
				t.Fatalf("listed sale of stream %s", s.StreamID)
			}
		}
		wantIDs(t, "ListFlashSales", ids, []string{f.sale.ID, "fs_0c", "fs_0a"})
		none, err := st.ListFlashSales(ctx(t), "str_none")
		must(t, err)
		if len(none) != 0 {
			t.Fatalf("ListFlashSales of an unknown stream = %v", none)
		}
	})

	t.Run("EndOnceOnly", func(t *testing.T) {
		s := f.addSale(t, "fs_end")
		at := T0.Add(5 * time.Minute)
		got, err := st.EndFlashSale(ctx(t), s.ID, at)
		must(t, err)
		if !timeEq(got.EndedAt, &at) || got.StateAt(at) != commerce.SaleEnded || got.StockLeft != s.Quantity {
			t.Fatalf("EndFlashSale = %+v", got)
		}
		got, err = st.GetFlashSale(ctx(t), s.ID)
		must(t, err)
		if !timeEq(got.EndedAt, &at) {
			t.Fatalf("GetFlashSale after end: EndedAt %v, want %v", got.EndedAt, at)
		}
		_, err = st.EndFlashSale(ctx(t), s.ID, at.Add(time.Second))
		wantCode(t, err, commerce.ECONFLICT)
		_, err = st.EndFlashSale(ctx(t), "fs_none", at)
		wantCode(t, err, commerce.ENOTFOUND)
	})

	t.Run("EndAfterEndsAtIsConflict", func(t *testing.T) {
		s := f.addSale(t, "fs_late")
		_, err := st.EndFlashSale(ctx(t), s.ID, s.EndsAt)
		wantCode(t, err, commerce.ECONFLICT)
	})
}
