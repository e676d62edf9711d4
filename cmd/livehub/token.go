package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/config"
)

// newVerifier builds the token verifier the hub and the HTTP APIs share:
// the HS256 secrets, the identity provider's key set, audience, issuer and
// leeway of cfg.
func newVerifier(cfg *config.Config) (*auth.Verifier, error) {
	if len(cfg.JWTSecrets) == 0 && cfg.JWTJWKSURL == "" {
		return nil, errors.New("LIVEHUB_JWT_SECRET or LIVEHUB_JWT_JWKS_URL is required (or run with -dev to generate a secret)")
	}
	secrets := make([][]byte, len(cfg.JWTSecrets))
	for i, s := range cfg.JWTSecrets {
		secrets[i] = []byte(s)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{
		Secrets:  secrets,
		JWKSURL:  cfg.JWTJWKSURL,
		Audience: cfg.JWTAudience,
		Issuer:   cfg.JWTIssuer,
		Leeway:   cfg.JWTLeeway,
	})
	if err != nil {
		return nil, fmt.Errorf("LIVEHUB_JWT_SECRET, LIVEHUB_JWT_JWKS_URL: %w", err)
	}
	return v, nil
}

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
	audience := fs.String("audience", getenv("LIVEHUB_JWT_AUDIENCE"), "aud claim (default: LIVEHUB_JWT_AUDIENCE)")
	issuer := fs.String("issuer", getenv("LIVEHUB_JWT_ISSUER"), "iss claim (default: LIVEHUB_JWT_ISSUER)")
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
	signer, err := auth.NewSigner(auth.SignerConfig{Secret: []byte(key), Audience: *audience, Issuer: *issuer})
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	tok, err := signer.Mint(c, *ttl)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
