package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
)

func TestAnUpstreamIdentityIsUsableOnlyWhenItsClaimsAreSafeToCarry(t *testing.T) {
	ok := domain.Identity{Subject: "auth0|5f7c8ec7c33c6c004bbafe82", Email: "ada@example.com", Name: "Ada Lovelace"}
	require.NoError(t, ok.Validate())

	cases := []struct {
		name  string
		edit  func(*domain.Identity)
		claim string // "" when the identity is acceptable
	}{
		{"a 255-byte subject", func(i *domain.Identity) { i.Subject = strings.Repeat("a", 255) }, ""},
		{"a subject with an inner space", func(i *domain.Identity) { i.Subject = "CN=Ada Lovelace" }, ""},
		{"no email and no name", func(i *domain.Identity) { i.Email, i.Name = "", "" }, ""},
		{"an internationalised email", func(i *domain.Identity) { i.Email = "josé@example.com" }, ""},
		{"a name in another script", func(i *domain.Identity) { i.Name = "李小龍 – محمد" }, ""},

		{"an empty subject", func(i *domain.Identity) { i.Subject = "" }, "sub"},
		{"a 256-byte subject", func(i *domain.Identity) { i.Subject = strings.Repeat("a", 256) }, "sub"},
		{"a subject with CR LF", func(i *domain.Identity) { i.Subject = "ada\r\nX-Admin: 1" }, "sub"},
		{"a subject with a tab", func(i *domain.Identity) { i.Subject = "ada\t1" }, "sub"},
		{"a subject with DEL", func(i *domain.Identity) { i.Subject = "ada\x7f" }, "sub"},
		{"a non-ASCII subject", func(i *domain.Identity) { i.Subject = "adé" }, "sub"},
		{"a subject with a trailing space", func(i *domain.Identity) { i.Subject = "ada " }, "sub"},
		{"a subject with a leading space", func(i *domain.Identity) { i.Subject = " ada" }, "sub"},
		{"an email with a display name", func(i *domain.Identity) { i.Email = "Ada <ada@example.com>" }, "email"},
		{"an email with a comment", func(i *domain.Identity) { i.Email = "ada@example.com (work)" }, "email"},
		{"an email without a domain", func(i *domain.Identity) { i.Email = "ada" }, "email"},
		{"an email with CR LF", func(i *domain.Identity) { i.Email = "ada@example.com\r\nBcc: x@y.z" }, "email"},
		{"a quoted email parsing would rewrite", func(i *domain.Identity) { i.Email = `"ada lovelace"@example.com` }, "email"},
		{"a 255-byte email", func(i *domain.Identity) { i.Email = strings.Repeat("a", 243) + "@example.com" }, "email"},
		{"a name over the bound", func(i *domain.Identity) { i.Name = strings.Repeat("n", domain.MaxNameLength+1) }, "name"},
		{"a name with a line feed", func(i *domain.Identity) { i.Name = "Ada\nLovelace" }, "name"},
		{"a name with a bidi override", func(i *domain.Identity) { i.Name = "Ada \u202egnp.exe" }, "name"},
		{"a name that is not UTF-8", func(i *domain.Identity) { i.Name = "Ada \xff" }, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := ok
			tc.edit(&id)
			err := id.Validate()
			if tc.claim == "" {
				require.NoError(t, err)
				return
			}
			var ce *domain.ClaimError
			require.True(t, errors.As(err, &ce), "%v", err)
			require.Equal(t, tc.claim, ce.Claim)
			for _, v := range []string{id.Subject, id.Email, id.Name} {
				if v != "" && v != ok.Subject && v != ok.Email && v != ok.Name {
					require.NotContains(t, err.Error(), v, "the error quotes the claim's value")
				}
			}
		})
	}
}
