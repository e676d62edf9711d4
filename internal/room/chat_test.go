package room_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/protoclient"
	"github.com/livehub/livehub/internal/room"
)

func TestChat_MessageIsStampedByTheServer(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.appoint(t, modID)
	watcher := e.join(t, "")
	cases := []struct {
		user, role string
	}{
		{viewerID, room.RoleViewer},
		{hostID, room.RoleHost},
		{modID, room.RoleModerator},
		{adminID, room.RoleModerator},
	}
	for _, tc := range cases {
		c := e.join(t, tc.user)
		if err := say(t, c, "  halo semua  "); err != nil {
			t.Fatalf("%s: %v", tc.user, err)
		}
		ev := nextEvent(t, watcher, "live:s1", room.EventChatMessage)
		m := decode[room.ChatMessage](t, ev)
		if ev.V != 1 || ev.ID == "" || ev.At.IsZero() {
			t.Fatalf("envelope %+v", ev.Event)
		}
		if !strings.HasPrefix(m.ID, "msg_") || m.Text != "halo semua" || m.UserID != tc.user || m.Name != "Name of "+tc.user || m.Role != tc.role {
			t.Fatalf("%s's message %+v, want role %s", tc.user, m, tc.role)
		}
	}
	// 300 characters by default.
	v := e.join(t, "v9")
	wantCode(t, say(t, v, strings.Repeat("a", 301)), 107, "longer than 300 characters")
	if err := say(t, v, strings.Repeat("a", 300)); err != nil {
		t.Fatal(err)
	}
}

func TestChat_RefusesWhatIsNotAShortLineOfText(t *testing.T) {
	e := newEnv(t, envOptions{room: func(c *room.Config) { c.MaxMessageRunes = 20 }})
	c := e.join(t, viewerID)
	cases := []struct {
		name, data, reason string
	}{
		{"not an object", `"halo"`, `{"text": "..."}`},
		{"no text", `{}`, `{"text": "..."}`},
		{"null text", `{"text":null}`, `{"text": "..."}`},
		{"text not a string", `{"text":1}`, `{"text": "..."}`},
		{"unknown field", `{"text":"a","color":"red"}`, `{"text": "..."}`},
		{"empty", `{"text":""}`, "empty"},
		{"blank", `{"text":"   "}`, "empty"},
		{"too long", `{"text":"` + strings.Repeat("é", 21) + `"}`, "longer than 20 characters"},
		{"line break", `{"text":"a\nb"}`, "control characters"},
		{"escape", `{"text":"a\u001b[31mb"}`, "control characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, c.Publish(ctxT(t), "live:s1", []byte(tc.data)), 107, tc.reason)
		})
	}
	// Exactly the limit, counted in characters, not bytes.
	if err := say(t, c, strings.Repeat("é", 20)); err != nil {
		t.Fatal(err)
	}
}

func TestChat_NeedsASignedInUserAndALiveStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	anon := e.join(t, "")
	wantCode(t, say(t, anon, "halo"), 103, "")

	c := e.connect(t, viewerID)
	subscribe(t, c, "live:nope")
	wantCode(t, c.Publish(ctxT(t), "live:nope", []byte(`{"text":"halo"}`)), 102, "no such stream")

	v := e.join(t, viewerID)
	if _, err := e.store.EndStream(ctxT(t), streamID, time.Now()); err != nil {
		t.Fatal(err)
	}
	wantCode(t, say(t, v, "halo"), 108, "ended")
}

func TestChat_MutedViewerIsRefusedWithTheTimeLeft(t *testing.T) {
	e := newEnv(t, envOptions{})
	v := e.join(t, viewerID)
	other := e.join(t, "v2")
	if err := say(t, v, "halo"); err != nil {
		t.Fatal(err)
	}
	e.must(t, http.StatusOK, hostID, "POST", "/v1/streams/s1/moderation/mutes", `{"user_id":"v1","duration_seconds":300}`)
	wantCode(t, say(t, v, "halo lagi"), 103, "muted in this chat for 5m0s more")
	e.clock.advance(2*time.Minute + 30*time.Second)
	wantCode(t, say(t, v, "halo lagi"), 103, "for 2m30s more")
	if err := say(t, other, "aku bisa"); err != nil {
		t.Fatalf("another viewer is refused: %v", err)
	}
	e.clock.advance(150 * time.Second)
	if err := say(t, v, "sudah boleh"); err != nil {
		t.Fatalf("the mute outlived its end: %v", err)
	}

	e.must(t, http.StatusOK, hostID, "POST", "/v1/streams/s1/moderation/mutes", `{"user_id":"v1","duration_seconds":3600}`)
	wantCode(t, say(t, v, "x"), 103, "1h0m more")
	e.must(t, http.StatusNoContent, hostID, "DELETE", "/v1/streams/s1/moderation/mutes/v1", "")
	if err := say(t, v, "unmuted"); err != nil {
		t.Fatalf("unmuted viewer refused: %v", err)
	}
	muted := e.metric(t, "livehub_room_chat_messages_total", map[string]string{"outcome": "muted"})
	published := e.metric(t, "livehub_room_chat_messages_total", map[string]string{"outcome": "published"})
	if muted != 3 || published != 4 {
		t.Fatalf("chat metrics: %v muted, %v published; want 3 and 4", muted, published)
	}
}

func TestChat_BannedViewerIsRefusedUntilUnbanned(t *testing.T) {
	e := newEnv(t, envOptions{})
	v := e.join(t, viewerID)
	e.must(t, http.StatusOK, hostID, "POST", "/v1/streams/s1/moderation/bans", `{"user_id":"v1"}`)
	wantCode(t, say(t, v, "halo"), 103, "banned")
	// A ban is for the stream, however long.
	e.clock.advance(24 * time.Hour)
	wantCode(t, say(t, v, "halo"), 103, "banned")
	e.must(t, http.StatusNoContent, hostID, "DELETE", "/v1/streams/s1/moderation/bans/v1", "")
	if err := say(t, v, "halo"); err != nil {
		t.Fatalf("unbanned viewer refused: %v", err)
	}
}

func TestChat_SlowModeMakesViewersWaitButNotTheStaff(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.appoint(t, modID)
	v, v2 := e.join(t, viewerID), e.join(t, "v2")
	host, mod, admin := e.join(t, hostID), e.join(t, modID), e.join(t, adminID)
	e.must(t, http.StatusOK, modID, "PUT", "/v1/streams/s1/moderation/slow-mode", `{"seconds":30}`)

	if err := say(t, v, "satu"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, say(t, v, "dua"), 111, "wait 30 seconds")
	e.clock.advance(29 * time.Second)
	wantCode(t, say(t, v, "dua"), 111, "wait 1 second ")
	if err := say(t, v2, "aku juga"); err != nil {
		t.Fatalf("slow mode is per viewer: %v", err)
	}
	for name, c := range map[string]*protoclient.Conn{hostID: host, modID: mod, adminID: admin} {
		for i := range 3 {
			if err := say(t, c, fmt.Sprintf("staff %d", i)); err != nil {
				t.Fatalf("%s slowed: %v", name, err)
			}
		}
	}
	e.clock.advance(time.Second)
	if err := say(t, v, "dua"); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	e.must(t, http.StatusOK, hostID, "PUT", "/v1/streams/s1/moderation/slow-mode", `{"seconds":0}`)
	if err := say(t, v, "tiga"); err != nil {
		t.Fatalf("slow mode off: %v", err)
	}
}

func TestChat_MutedWordsAreRejectedOrMasked(t *testing.T) {
	e := newEnv(t, envOptions{})
	v := e.join(t, viewerID)
	watcher := e.join(t, "")
	e.must(t, http.StatusOK, hostID, "PUT", "/v1/streams/s1/moderation/slow-mode", `{"seconds":60}`)
	e.must(t, http.StatusOK, hostID, "PUT", "/v1/streams/s1/moderation/muted-words", `{"words":["Spam","jelek"]}`)

	wantCode(t, say(t, v, "Beli SPAM sekarang!"), 107, `"spam"`)
	wantCode(t, say(t, v, "barang jelek"), 107, `"jelek"`)
	// Whole words only, and a refused message does not start slow mode.
	if err := say(t, v, "spammer? classy jelekkk"); err != nil {
		t.Fatalf("words inside other words are not muted: %v", err)
	}
	if m := decode[room.ChatMessage](t, nextEvent(t, watcher, "live:s1", room.EventChatMessage)); m.Text != "spammer? classy jelekkk" {
		t.Fatalf("text %q", m.Text)
	}

	e.must(t, http.StatusOK, hostID, "PUT", "/v1/streams/s1/moderation/muted-words", `{"words":["spam","jelek"],"mode":"mask"}`)
	v2 := e.join(t, "v2")
	if err := say(t, v2, "Beli SPAM, bukan barang Jelek!"); err != nil {
		t.Fatalf("masked message refused: %v", err)
	}
	if m := decode[room.ChatMessage](t, nextEvent(t, watcher, "live:s1", room.EventChatMessage)); m.Text != "Beli ****, bukan barang ****!" {
		t.Fatalf("masked text %q", m.Text)
	}
}
