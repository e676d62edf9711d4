package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRole_AcceptsExactNamesOnly(t *testing.T) {
	tests := []struct {
		in      string
		want    Role
		wantErr bool
	}{
		{"customer", RoleCustomer, false},
		{"host", RoleHost, false},
		{"moderator", RoleModerator, false},
		{"courier", RoleCourier, false},
		{"admin", RoleAdmin, false},
		{"Admin", "", true},
		{" admin", "", true},
		{"", "", true},
		{"superuser", "", true},
	}
	for _, tt := range tests {
		got, err := ParseRole(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseRole(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil && !errors.Is(err, ErrUnknownRole) {
			t.Errorf("ParseRole(%q) error = %v, want ErrUnknownRole", tt.in, err)
		}
		if got != tt.want {
			t.Errorf("ParseRole(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseRole_ErrorQuotesAtMostAShortPrefix(t *testing.T) {
	_, err := ParseRole(strings.Repeat("x", 1000))
	if err == nil || len(err.Error()) > 64 {
		t.Fatalf("ParseRole(long) error = %v, want a short error", err)
	}
}

func TestClaimsHasRole_AdminImpliesNothingElse(t *testing.T) {
	c := Claims{Roles: []Role{RoleAdmin}}
	if !c.HasRole(RoleAdmin) {
		t.Error("HasRole(admin) = false for an admin")
	}
	for _, r := range []Role{RoleCustomer, RoleHost, RoleModerator, RoleCourier} {
		if c.HasRole(r) {
			t.Errorf("HasRole(%s) = true for an admin only", r)
		}
	}
	if (Claims{}).HasRole(RoleCustomer) {
		t.Error("HasRole on no roles = true")
	}
}
