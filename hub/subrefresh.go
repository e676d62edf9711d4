package hub

import (
	"context"
	"errors"
	"time"

	"github.com/centrifugal/protocol"
)

// unsubscribeExpiredCode ends a subscription whose subscription token
// expired without a sub_refresh. The SDKs resubscribe after codes
// 2500-2999, asking their getToken callback for a fresh token.
const unsubscribeExpiredCode = 2501

// verifySubscribeToken checks that token grants channel to user and returns
// its expiry (zero for never). A token past its expiry but within the
// verifier's clock leeway counts as expired: the subscription would end as
// soon as it started.
func (c *Client) verifySubscribeToken(ctx context.Context, channel, token, user string) (time.Time, error) {
	granted, tcred, err := c.node.cfg.Tokens.VerifySubscribeToken(ctx, token)
	if err != nil {
		return time.Time{}, err
	}
	if granted != channel || tcred.UserID != user {
		return time.Time{}, errors.New("subscription token for another channel or user")
	}
	if !tcred.ExpireAt.IsZero() && !tcred.ExpireAt.After(time.Now()) {
		return time.Time{}, ErrTokenExpired
	}
	return tcred.ExpireAt, nil
}

// handleSubRefresh takes a new subscription token for a channel the client
// subscribed to with one, and moves the subscription's expiry to the new
// token's. It returns false once the connection is closing.
func (c *Client) handleSubRefresh(ctx context.Context, id uint32, req *protocol.SubRefreshRequest) bool {
	n := c.node
	channel := req.Channel
	if channel == "" {
		c.close(DisconnectBadRequest)
		return false
	}
	c.mu.Lock()
	sub, ok := c.subs[channel]
	tokenGrant := ok && sub.tokenGrant
	user := c.cred.UserID
	c.mu.Unlock()
	if !ok {
		// Only a subscription can be refreshed.
		c.replyError("sub_refresh", id, ErrorPermissionDenied)
		return true
	}
	if !tokenGrant || n.cfg.Tokens == nil {
		// No subscription token opened it, so there is nothing to refresh
		// and the SDKs never ask: the client is not following the protocol.
		c.close(DisconnectBadRequest)
		return false
	}
	if req.Token == "" {
		c.replyError("sub_refresh", id, ErrorBadRequest)
		return true
	}
	exp, err := c.verifySubscribeToken(ctx, channel, req.Token, user)
	if errors.Is(err, ErrTokenExpired) {
		c.replyError("sub_refresh", id, ErrorExpired)
		return true
	}
	if err != nil {
		n.log.Debug("sub_refresh refused", "client", c.id, "user", user, "channel", channel, "err", err)
		c.close(DisconnectInvalidToken)
		return false
	}
	c.mu.Lock()
	if cur, ok := c.subs[channel]; !ok || cur != sub {
		// Unsubscribed (or expired) while the token was being checked.
		c.mu.Unlock()
		c.replyError("sub_refresh", id, ErrorPermissionDenied)
		return true
	}
	sub.expireAt = exp
	c.armSubExpiryLocked(channel, sub)
	c.mu.Unlock()
	res := &protocol.SubRefreshResult{}
	if ttl, ok := ttlUntil(exp); ok {
		res.Expires, res.Ttl = true, ttl
	}
	c.reply(&protocol.Reply{Id: id, SubRefresh: res})
	return true
}

// armSubExpiryLocked (re)starts the timer that ends sub once its token has
// expired, ExpiredCloseDelay later: the SDK asks its getToken callback for
// the new token only when the ttl runs out, and that usually calls the
// app's backend. c.mu must be held.
func (c *Client) armSubExpiryLocked(channel string, sub *subscription) {
	if sub.expireTimer != nil {
		sub.expireTimer.Stop()
		sub.expireTimer = nil
	}
	if sub.expireAt.IsZero() || c.closed {
		return
	}
	delay := c.node.cfg.ExpiredCloseDelay
	sub.expireTimer = time.AfterFunc(time.Until(sub.expireAt)+delay, func() {
		c.expireSub(channel, sub)
	})
}

// expireSub ends sub with an unsubscribe push (2501) when its token expired
// and was not refreshed in time.
func (c *Client) expireSub(channel string, sub *subscription) {
	delay := c.node.cfg.ExpiredCloseDelay
	c.mu.Lock()
	cur, ok := c.subs[channel]
	if c.closed || !ok || cur != sub || sub.expireAt.IsZero() || sub.expireAt.Add(delay).After(time.Now()) {
		// Gone, refreshed meanwhile (its new timer is running), or closing.
		c.mu.Unlock()
		return
	}
	c.expiring.Add(1)
	c.mu.Unlock()
	defer c.expiring.Done()
	if !c.unsubscribeSub(c.ctx, channel, sub) {
		return
	}
	c.node.log.Debug("subscription expired", "client", c.id, "channel", channel)
	data, err := c.enc.encodeReply(&protocol.Reply{Push: &protocol.Push{
		Channel:     channel,
		Unsubscribe: &protocol.Unsubscribe{Code: unsubscribeExpiredCode, Reason: "subscription expired"},
	}})
	if err == nil {
		c.enqueue(data)
	}
}
