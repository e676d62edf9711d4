package room_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/centrifugal/protocol"

	"github.com/livehub/livehub/internal/protoclient"
	"github.com/livehub/livehub/internal/room"
)

// action is one moderation call of the REST API.
type action struct {
	name, method, path, body string
	ok                       int
	// appoint actions are for the host and admins only.
	appoint bool
}

var actions = []action{
	{"appoint moderator", "POST", "/moderation/moderators", `{"user_id":"x1"}`, 200, true},
	{"remove moderator", "DELETE", "/moderation/moderators/x1", "", 204, true},
	{"mute", "POST", "/moderation/mutes", `{"user_id":"target","duration_seconds":60}`, 200, false},
	{"unmute", "DELETE", "/moderation/mutes/target", "", 204, false},
	{"ban", "POST", "/moderation/bans", `{"user_id":"target"}`, 200, false},
	{"unban", "DELETE", "/moderation/bans/target", "", 204, false},
	{"delete message", "POST", "/moderation/messages/msg_0123abcd/delete", "", 204, false},
	{"slow mode", "PUT", "/moderation/slow-mode", `{"seconds":5}`, 200, false},
	{"muted words", "PUT", "/moderation/muted-words", `{"words":["spam"],"mode":"mask"}`, 200, false},
	{"pin message", "PUT", "/moderation/pinned-message", `{"text":"Diskon 50%!"}`, 200, false},
	{"unpin message", "DELETE", "/moderation/pinned-message", "", 204, false},
	{"pin product", "PUT", "/pinned-product", `{"product":{"id":"p1","name":"Batik"},"price":150000}`, 200, false},
	{"unpin product", "DELETE", "/pinned-product", "", 204, false},
	{"read state", "GET", "/moderation", "", 200, false},
}

func TestModeration_WhoMayDoWhat(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.appoint(t, modID)
	actors := []struct {
		name, user string
		// moderate: may act on the room; appoint: may appoint moderators.
		moderate, appoint bool
	}{
		{"host", hostID, true, true},
		{"moderator", modID, true, false},
		{"other host", otherHost, false, false},
		{"viewer", viewerID, false, false},
		{"admin", adminID, true, true},
	}
	for _, a := range actors {
		for _, act := range actions {
			t.Run(a.name+"/"+act.name, func(t *testing.T) {
				allowed := a.moderate && (!act.appoint || a.appoint)
				want := act.ok
				if !allowed {
					want = http.StatusForbidden
				}
				out := e.must(t, want, a.user, act.method, "/v1/streams/s1"+act.path, act.body)
				if !allowed && out["code"] != "forbidden" {
					t.Fatalf("refusal %v", out)
				}
			})
		}
	}
	// Without a token, nothing.
	for _, act := range actions {
		e.must(t, http.StatusUnauthorized, "", act.method, "/v1/streams/s1"+act.path, act.body)
	}
	// The moderator is still one: nothing above removed it.
	if s := e.roomState(t); !slices.Equal(s.Moderators, []string{modID}) {
		t.Fatalf("moderators %v", s.Moderators)
	}
}

func TestModeration_ModeratorsCannotSilenceTheHostOrEachOther(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.appoint(t, modID)
	e.appoint(t, "mod2")
	for _, user := range []string{modID, adminID} {
		e.must(t, http.StatusForbidden, user, "POST", "/v1/streams/s1/moderation/mutes", `{"user_id":"host1","duration_seconds":60}`)
		e.must(t, http.StatusForbidden, user, "POST", "/v1/streams/s1/moderation/bans", `{"user_id":"host1"}`)
	}
	out := e.must(t, http.StatusForbidden, modID, "POST", "/v1/streams/s1/moderation/mutes", `{"user_id":"mod2","duration_seconds":60}`)
	if out["detail"] != "only the stream's host or an admin may mute a moderator" {
		t.Fatalf("detail %v", out["detail"])
	}
	e.must(t, http.StatusForbidden, modID, "POST", "/v1/streams/s1/moderation/bans", `{"user_id":"mod2"}`)
	e.must(t, http.StatusOK, hostID, "POST", "/v1/streams/s1/moderation/mutes", `{"user_id":"mod2","duration_seconds":60}`)
	e.must(t, http.StatusOK, adminID, "POST", "/v1/streams/s1/moderation/bans", `{"user_id":"mod2"}`)
	// A moderator removed by the host moderates no more.
	e.must(t, http.StatusNoContent, hostID, "DELETE", "/v1/streams/s1/moderation/moderators/mod1", "")
	e.must(t, http.StatusForbidden, modID, "PUT", "/v1/streams/s1/moderation/slow-mode", `{"seconds":5}`)
}

func TestModeration_BadInputNamesTheField(t *testing.T) {
	e := newEnv(t, envOptions{})
	cases := []struct {
		method, path, body, field string
	}{
		{"POST", "/moderation/mutes", `{"user_id":"v1"}`, "duration_seconds"},
		{"POST", "/moderation/mutes", `{"user_id":"v1","duration_seconds":0}`, "duration_seconds"},
		{"POST", "/moderation/mutes", `{"user_id":"v1","duration_seconds":604801}`, "duration_seconds"},
		{"POST", "/moderation/mutes", `{"user_id":"","duration_seconds":60}`, "user_id"},
		{"POST", "/moderation/mutes", `{"user_id":"v1","duration_seconds":"60"}`, "duration_seconds"},
		{"POST", "/moderation/bans", `{"user_id":"v1","reason":"spam"}`, "reason"},
		{"POST", "/moderation/moderators", `{"user_id":"host1"}`, "user_id"},
		{"PUT", "/moderation/slow-mode", `{}`, "seconds"},
		{"PUT", "/moderation/slow-mode", `{"seconds":-1}`, "seconds"},
		{"PUT", "/moderation/slow-mode", `{"seconds":3601}`, "seconds"},
		{"PUT", "/moderation/muted-words", `{"mode":"mask"}`, "words"},
		{"PUT", "/moderation/muted-words", `{"words":["ok","two words"]}`, "words[1]"},
		{"PUT", "/moderation/muted-words", `{"words":["ok"],"mode":"shout"}`, "mode"},
		{"PUT", "/moderation/pinned-message", `{"text":"   "}`, "text"},
		{"PUT", "/moderation/pinned-message", `{"text":"a\u0000b"}`, "text"},
		{"POST", "/moderation/messages/bad%20id/delete", ``, "msg"},
		{"PUT", "/pinned-product", `{"product":{"name":"Batik"},"price":1}`, "product.id"},
		{"PUT", "/pinned-product", `{"product":{"id":"p1"},"price":1}`, "product.name"},
		{"PUT", "/pinned-product", `{"product":{"id":"p1","name":"Batik","image_url":"javascript:x"},"price":1}`, "product.image_url"},
		{"PUT", "/pinned-product", `{"product":{"id":"p1","name":"Batik"},"price":0}`, "price"},
		{"PUT", "/pinned-product", `{"product":{"id":"p1","name":"Batik"},"price":1,"stock":-1}`, "stock"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			out := e.must(t, http.StatusBadRequest, hostID, tc.method, "/v1/streams/s1"+tc.path, tc.body)
			if out["code"] != "invalid" || out["field"] != tc.field || out["detail"] == "" {
				t.Fatalf("problem %v, want field %s", out, tc.field)
			}
		})
	}
}

func TestModeration_UnknownOrEndedStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.must(t, http.StatusNotFound, hostID, "PUT", "/v1/streams/nope/moderation/slow-mode", `{"seconds":5}`)
	e.must(t, http.StatusNotFound, "", "GET", "/v1/streams/nope/room", "")
	if _, err := e.store.EndStream(ctxT(t), streamID, e.clock.now()); err != nil {
		t.Fatal(err)
	}
	out := e.must(t, http.StatusConflict, hostID, "PUT", "/v1/streams/s1/moderation/slow-mode", `{"seconds":5}`)
	if out["detail"] != "the stream has ended" {
		t.Fatalf("detail %v", out["detail"])
	}
	// The console still reads an ended stream's room.
	e.must(t, http.StatusOK, hostID, "GET", "/v1/streams/s1/moderation", "")
}

func TestModeration_DeleteTellsTheRoomAndTheStudio(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.appoint(t, modID)
	studio := e.connect(t, hostID)
	subscribe(t, studio, "studio:s1")
	v := e.join(t, viewerID)
	watcher := e.join(t, "")
	if err := say(t, v, "beli di toko sebelah"); err != nil {
		t.Fatal(err)
	}
	msg := decode[room.ChatMessage](t, nextEvent(t, watcher, "live:s1", room.EventChatMessage))

	e.must(t, http.StatusNoContent, modID, "POST", "/v1/streams/s1/moderation/messages/"+msg.ID+"/delete", "")
	del := decode[map[string]string](t, nextEvent(t, watcher, "live:s1", room.EventChatDeleted))
	if len(del) != 1 || del["message_id"] != msg.ID {
		t.Fatalf("chat.deleted data %v, want message_id %s", del, msg.ID)
	}
	mod := decode[map[string]any](t, nextEvent(t, studio, "studio:s1", room.EventMessageDeleted))
	if mod["by"] != modID || mod["message_id"] != msg.ID {
		t.Fatalf("studio event %v", mod)
	}
}

func TestModeration_PinsReachTheRoom(t *testing.T) {
	e := newEnv(t, envOptions{})
	watcher := e.join(t, "")

	e.must(t, http.StatusOK, hostID, "PUT", "/v1/streams/s1/moderation/pinned-message", `{"text":"  Gratis ongkir hari ini  "}`)
	pm := decode[room.PinnedMessage](t, nextEvent(t, watcher, "live:s1", room.EventMessagePinned))
	if pm.Text != "Gratis ongkir hari ini" || pm.PinnedBy != hostID || pm.PinnedAt.IsZero() {
		t.Fatalf("message.pinned %+v", pm)
	}

	out := e.must(t, http.StatusOK, hostID, "PUT", "/v1/streams/s1/pinned-product",
		`{"product":{"id":"p1","name":"Batik Tulis","image_url":"https://img/p1.jpg"},"price":250000,"stock":12}`)
	if out["price"] != float64(250000) || out["stock"] != float64(12) {
		t.Fatalf("answer %v", out)
	}
	pp := decode[map[string]any](t, nextEvent(t, watcher, "live:s1", room.EventProductPinned))
	product, _ := pp["product"].(map[string]any)
	if pp["price"] != float64(250000) || pp["stock"] != float64(12) || product["id"] != "p1" || product["name"] != "Batik Tulis" {
		t.Fatalf("product.pinned %v", pp)
	}
	e.must(t, http.StatusOK, hostID, "PUT", "/v1/streams/s1/pinned-product", `{"product":{"id":"p2","name":"Kain"},"price":90000}`)
	pp = decode[map[string]any](t, nextEvent(t, watcher, "live:s1", room.EventProductPinned))
	if _, has := pp["stock"]; has || pp["price"] != float64(90000) {
		t.Fatalf("product.pinned without stock %v", pp)
	}

	// A late viewer reads what is pinned.
	info := e.must(t, http.StatusOK, "", "GET", "/v1/streams/s1/room", "")
	if info["pinned_message"].(map[string]any)["text"] != "Gratis ongkir hari ini" || info["pinned_product"].(map[string]any)["price"] != float64(90000) {
		t.Fatalf("room info %v", info)
	}

	e.must(t, http.StatusNoContent, hostID, "DELETE", "/v1/streams/s1/moderation/pinned-message", "")
	nextEvent(t, watcher, "live:s1", room.EventMessageUnpinned)
	e.must(t, http.StatusNoContent, hostID, "DELETE", "/v1/streams/s1/pinned-product", "")
	nextEvent(t, watcher, "live:s1", room.EventProductUnpinned)
	info = e.must(t, http.StatusOK, "", "GET", "/v1/streams/s1/room", "")
	if info["pinned_message"] != nil || info["pinned_product"] != nil {
		t.Fatalf("unpinned room info %v", info)
	}
}

func TestModeration_EveryActionIsWrittenToTheStudio(t *testing.T) {
	e := newEnv(t, envOptions{})
	studio := e.connect(t, hostID)
	subscribe(t, studio, "studio:s1")
	want := []string{
		room.EventModeratorAdded, room.EventModeratorRemoved,
		room.EventUserMuted, room.EventUserUnmuted, room.EventUserBanned, room.EventUserUnbanned,
		room.EventMessageDeleted, room.EventSlowModeSet, room.EventMutedWordsSet,
		room.EventModMessagePinned, room.EventModMessageUnpinned,
		room.EventModProductPinned, room.EventModProductUnpinned,
	}
	for i, act := range actions {
		if act.method == "GET" {
			continue
		}
		e.must(t, act.ok, hostID, act.method, "/v1/streams/s1"+act.path, act.body)
		ev := nextEvent(t, studio, "studio:s1", want[i])
		if by := decode[map[string]any](t, ev)["by"]; by != hostID {
			t.Fatalf("%s by %v", ev.Type, by)
		}
	}
	muted := e.must(t, http.StatusOK, hostID, "POST", "/v1/streams/s1/moderation/mutes", `{"user_id":"v9","duration_seconds":90}`)
	ev := decode[map[string]any](t, nextEvent(t, studio, "studio:s1", room.EventUserMuted))
	if ev["user_id"] != "v9" || ev["duration_seconds"] != float64(90) || ev["until"] != muted["until"] {
		t.Fatalf("moderation.user_muted %v (answer %v)", ev, muted)
	}
}

// The studio of a stream shows its orders and revenue: its host, the
// moderators the host appointed and admins see it; other hosts and viewers
// do not.
func TestStudio_OpenToItsHostModeratorsAndAdmins(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.appoint(t, "mod-ani")
	studio := "studio:" + streamID
	for _, tt := range []struct {
		user    string
		allowed bool
	}{
		{hostID, true}, {"mod-ani", true}, {adminID, true},
		{otherHost, false}, {"viewer-budi", false},
	} {
		c := e.connect(t, tt.user)
		_, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: studio})
		if tt.allowed && err != nil {
			t.Fatalf("%s refused the studio: %v", tt.user, err)
		}
		if !tt.allowed {
			var re *protoclient.ReplyError
			if !errors.As(err, &re) || re.Code != 103 {
				t.Fatalf("%s: want 103, got %v", tt.user, err)
			}
		}
	}
}
