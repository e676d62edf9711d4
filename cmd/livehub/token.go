package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/livehub/livehub/internal/auth"
)

// runToken mints a connection (or, with --channel, subscription) token
// signed with LIVEHUB_JWT_SECRET.
func runToken(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("livehub token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "user id (required)")
	name := fs.String("name", "", "display name")
	roles := fs.String("roles", "customer", "comma-separated roles: customer, host, moderator, courier, admin")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token")
	channel := fs.String("channel", "", "mint a subscription token for this channel")
	secret := fs.String("secret", "", "HS256 secret (default: the first of LIVEHUB_JWT_SECRET)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: --sub is required")
	}
	key := *secret
	if key == "" {
		key, _, _ = strings.Cut(getenv("LIVEHUB_JWT_SECRET"), ",")
	}
	if key == "" {
		return errors.New("token: set LIVEHUB_JWT_SECRET or --secret")
	}
	c := auth.Claims{Subject: *sub, Name: *name, Channel: *channel}
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		role, err := auth.ParseRole(r)
		if err != nil {
			return fmt.Errorf("token: --roles: %w", err)
		}
		c.Roles = append(c.Roles, role)
	}
	tok, err := auth.Mint([]byte(key), c, *ttl)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
