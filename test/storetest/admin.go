package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// ownedGrant is fullGrant("g-"+id) of subject for client.
func ownedGrant(id, subject, client string) domain.Grant {
	g := fullGrant(id)
	g.Subject, g.Identity.Subject, g.ClientID = subject, subject, client
	return g
}

// grantIDs lists the ids of grants, in order.
func grantIDs(gs []domain.Grant) []string {
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		out = append(out, g.ID)
	}
	return out
}

// listGrants lists one page of the grants filter selects, live at base.
func listGrants(t *testing.T, s ports.Store, filter ports.GrantFilter, after string, limit int) []string {
	t.Helper()
	gs, err := s.ListGrants(t.Context(), filter, ports.Page{After: after, Limit: limit}, base)
	require.NoError(t, err)
	return grantIDs(gs)
}

// requireGone fails unless grant id, its first code and the named refresh
// tokens read as not found.
func requireGone(t *testing.T, s ports.Store, id string, tokens ...string) {
	t.Helper()
	requireRevoked(t, s, id, tokens...)
	_, _, err := s.RedeemCode(t.Context(), "code-"+id, base, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
	require.ErrorIs(t, err, domain.ErrNotFound, "code of grant %s", id)
}

func testClientAdmin(t *testing.T, newStore func(*testing.T) ports.Store) {
	t.Run("clients list in id order, page by page, with every field", func(t *testing.T) {
		s := newStore(t)
		var want []domain.Client
		for _, id := range []string{"c3", "c1", "https://app.example.com/client.json", "c2", "c10"} {
			c := fullClient(id)
			c.Operator = id == "c2" // the others registered themselves
			require.NoError(t, s.CreateClient(t.Context(), c))
		}
		for _, id := range []string{"c1", "c10", "c2", "c3", "https://app.example.com/client.json"} {
			c := fullClient(id)
			c.Operator = id == "c2"
			want = append(want, c)
		}

		var got []domain.Client
		after := ""
		for range 10 {
			page, err := s.ListClients(t.Context(), ports.Page{After: after, Limit: 2})
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), 2)
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].ID
		}
		require.Equal(t, want, got)

		all, err := s.ListClients(t.Context(), ports.Page{Limit: 100})
		require.NoError(t, err)
		require.Equal(t, want, all)
		rest, err := s.ListClients(t.Context(), ports.Page{After: "c2", Limit: 100})
		require.NoError(t, err)
		require.Equal(t, want[3:], rest, "After is exclusive")
	})

	t.Run("an empty store lists no clients and a listing needs a positive limit", func(t *testing.T) {
		s := newStore(t)
		got, err := s.ListClients(t.Context(), ports.Page{Limit: 10})
		require.NoError(t, err)
		require.Empty(t, got)
		_, err = s.ListClients(t.Context(), ports.Page{})
		require.Error(t, err)
		_, err = s.ListGrants(t.Context(), ports.GrantFilter{}, ports.Page{Limit: -1}, base)
		require.Error(t, err)
	})

	t.Run("deleting a client revokes every grant of it and nothing else", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateClient(t.Context(), fullClient("c1")))
		require.NoError(t, s.CreateClient(t.Context(), fullClient("c2")))
		seedToken(t, s, ownedGrant("g1", "alice", "c1"), liveToken("rt-1", "g1"))
		seedGrant(t, s, ownedGrant("g2", "bob", "c1"))
		expired := ownedGrant("g3", "bob", "c1")
		expired.ExpiresAt = base // dead, not yet swept
		seedGrant(t, s, expired)
		seedToken(t, s, ownedGrant("g4", "alice", "c2"), liveToken("rt-4", "g4"))

		n, err := s.DeleteClient(t.Context(), "c1")
		require.NoError(t, err)
		require.Equal(t, 3, n, "the two live grants and the expired one")

		_, err = s.GetClient(t.Context(), "c1")
		require.ErrorIs(t, err, domain.ErrNotFound)
		requireGone(t, s, "g1", "rt-1")
		requireGone(t, s, "g2")
		require.Empty(t, listGrants(t, s, ports.GrantFilter{ClientID: "c1"}, "", 10))

		_, err = s.GetClient(t.Context(), "c2")
		require.NoError(t, err)
		_, err = s.GetRefreshToken(t.Context(), "rt-4", base)
		require.NoError(t, err)
		require.Equal(t, []string{"g4"}, listGrants(t, s, ports.GrantFilter{}, "", 10))

		_, err = s.DeleteClient(t.Context(), "c1")
		require.ErrorIs(t, err, domain.ErrNotFound, "a second delete finds nothing")
	})

	t.Run("deleting an absent client is not found and revokes nothing", func(t *testing.T) {
		s := newStore(t)
		// A client metadata document client is never stored, yet its
		// grants are: only RevokeGrants ends them.
		seedGrant(t, s, ownedGrant("g1", "alice", "https://app.example.com/client.json"))

		_, err := s.DeleteClient(t.Context(), "https://app.example.com/client.json")
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = s.DeleteClient(t.Context(), "")
		require.Error(t, err)
		_, err = s.GetGrant(t.Context(), "g1", base)
		require.NoError(t, err)
	})

	t.Run("a deleted client's id can be used again, without its old grants", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateClient(t.Context(), fullClient("c1")))
		seedGrant(t, s, ownedGrant("g1", "alice", "c1"))
		_, err := s.GetClient(t.Context(), "c1") // a read, which a cache may keep
		require.NoError(t, err)
		_, err = s.DeleteClient(t.Context(), "c1")
		require.NoError(t, err)
		_, err = s.GetClient(t.Context(), "c1")
		require.ErrorIs(t, err, domain.ErrNotFound, "no cache may keep a deleted client")

		again := fullClient("c1")
		again.Name = "Second life"
		require.NoError(t, s.CreateClient(t.Context(), again))
		got, err := s.GetClient(t.Context(), "c1")
		require.NoError(t, err)
		require.Equal(t, again, got)
		require.Empty(t, listGrants(t, s, ports.GrantFilter{ClientID: "c1"}, "", 10))
	})
}

func testGrantAdmin(t *testing.T, newStore func(*testing.T) ports.Store) {
	// seed stores, in creation order: alice's grants of c1 and c2, bob's
	// of c1, an expired one of alice's, and "al" and "alice2", whose
	// names begin like alice's or contain it.
	seed := func(t *testing.T, s ports.Store) {
		t.Helper()
		seedToken(t, s, ownedGrant("g1", "alice", "c1"), liveToken("rt-1", "g1"))
		seedToken(t, s, ownedGrant("g2", "alice", "c2"), liveToken("rt-2", "g2"))
		seedGrant(t, s, ownedGrant("g3", "bob", "c1"))
		dead := ownedGrant("g4", "alice", "c1")
		dead.ExpiresAt = base
		seedGrant(t, s, dead)
		seedGrant(t, s, ownedGrant("g5", "al", "c"))
		seedGrant(t, s, ownedGrant("g6", "alice2", "c10"))
	}

	t.Run("live grants list by subject, by client, by both or all, in id order, with every field", func(t *testing.T) {
		s := newStore(t)
		seed(t, s)
		for _, tc := range []struct {
			filter ports.GrantFilter
			want   []string
		}{
			{ports.GrantFilter{}, []string{"g1", "g2", "g3", "g5", "g6"}},
			{ports.GrantFilter{Subject: "alice"}, []string{"g1", "g2"}},
			{ports.GrantFilter{Subject: "al"}, []string{"g5"}},
			{ports.GrantFilter{ClientID: "c1"}, []string{"g1", "g3"}},
			{ports.GrantFilter{ClientID: "c"}, []string{"g5"}},
			{ports.GrantFilter{Subject: "alice", ClientID: "c2"}, []string{"g2"}},
			{ports.GrantFilter{Subject: "bob", ClientID: "c2"}, []string{}},
			{ports.GrantFilter{GrantID: "g3"}, []string{"g3"}},
			{ports.GrantFilter{GrantID: "g3", Subject: "alice"}, []string{}},
			{ports.GrantFilter{GrantID: "g4"}, []string{}},
			{ports.GrantFilter{Subject: "nobody"}, []string{}},
		} {
			require.Equal(t, tc.want, listGrants(t, s, tc.filter, "", 100), "%+v", tc.filter)
		}

		got, err := s.ListGrants(t.Context(), ports.GrantFilter{Subject: "bob"}, ports.Page{Limit: 10}, base)
		require.NoError(t, err)
		require.Equal(t, []domain.Grant{ownedGrant("g3", "bob", "c1")}, got)
	})

	t.Run("grant listings page with After and Limit under every filter", func(t *testing.T) {
		s := newStore(t)
		for i := range 7 {
			subject, client := "alice", "c1"
			if i%2 == 1 {
				subject = "bob"
			}
			if i%3 == 2 {
				client = "c2"
			}
			seedGrant(t, s, ownedGrant(fmt.Sprintf("g%d", i), subject, client))
		}
		for _, filter := range []ports.GrantFilter{{}, {Subject: "alice"}, {ClientID: "c1"}, {Subject: "bob", ClientID: "c1"}} {
			all := listGrants(t, s, filter, "", 100)
			require.NotEmpty(t, all)
			var paged []string
			after := ""
			for range 10 {
				page := listGrants(t, s, filter, after, 2)
				if len(page) == 0 {
					break
				}
				require.LessOrEqual(t, len(page), 2)
				paged = append(paged, page...)
				after = page[len(page)-1]
			}
			require.Equal(t, all, paged, "%+v", filter)
		}
	})

	t.Run("a listing judges expiry at now", func(t *testing.T) {
		s := newStore(t)
		g := ownedGrant("g1", "alice", "c1")
		seedGrant(t, s, g)
		gs, err := s.ListGrants(t.Context(), ports.GrantFilter{Subject: "alice"}, ports.Page{Limit: 10}, g.ExpiresAt)
		require.NoError(t, err)
		require.Empty(t, gs)
		gs, err = s.ListGrants(t.Context(), ports.GrantFilter{}, ports.Page{Limit: 10}, g.ExpiresAt.Add(-time.Nanosecond))
		require.NoError(t, err)
		require.Len(t, gs, 1)
	})

	for _, tc := range []struct {
		name    string
		filter  ports.GrantFilter
		revoked int
		gone    []string
		kept    []string
	}{
		{"revoking a subject's grants ends them all, of every client, and no one else's",
			ports.GrantFilter{Subject: "alice"}, 3, []string{"g1", "g2"}, []string{"g3", "g5", "g6"}},
		{"revoking a client's grants ends them all, of every user, and no other client's",
			ports.GrantFilter{ClientID: "c1"}, 3, []string{"g1", "g3"}, []string{"g2", "g5", "g6"}},
		{"revoking a subject's grants of one client leaves the others",
			ports.GrantFilter{Subject: "alice", ClientID: "c2"}, 1, []string{"g2"}, []string{"g1", "g3", "g5", "g6"}},
		{"revoking one grant by id",
			ports.GrantFilter{GrantID: "g1"}, 1, []string{"g1"}, []string{"g2", "g3", "g5", "g6"}},
		{"revoking a grant by id and the wrong subject revokes nothing",
			ports.GrantFilter{GrantID: "g1", Subject: "bob"}, 0, nil, []string{"g1", "g2", "g3", "g5", "g6"}},
		{"revoking an unknown subject revokes nothing",
			ports.GrantFilter{Subject: "nobody"}, 0, nil, []string{"g1", "g2", "g3", "g5", "g6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			seed(t, s)
			n, err := s.RevokeGrants(t.Context(), tc.filter)
			require.NoError(t, err)
			require.Equal(t, tc.revoked, n)
			tokens := map[string][]string{"g1": {"rt-1"}, "g2": {"rt-2"}}
			for _, id := range tc.gone {
				requireGone(t, s, id, tokens[id]...)
			}
			for _, id := range tc.kept {
				_, err := s.GetGrant(t.Context(), id, base)
				require.NoError(t, err, "grant %s", id)
			}
			require.Equal(t, tc.kept, listGrants(t, s, ports.GrantFilter{}, "", 100))
			require.Empty(t, listGrants(t, s, tc.filter, "", 100))
		})
	}

	t.Run("an empty revocation is refused and changes nothing", func(t *testing.T) {
		s := newStore(t)
		seed(t, s)
		_, err := s.RevokeGrants(t.Context(), ports.GrantFilter{})
		require.Error(t, err)
		require.Equal(t, []string{"g1", "g2", "g3", "g5", "g6"}, listGrants(t, s, ports.GrantFilter{}, "", 100))
	})

	t.Run("revoked, swept and rotated grants keep the listings exact", func(t *testing.T) {
		s := newStore(t)
		seed(t, s)
		// A rotation rewrites g1; the grant keeps its place in the
		// listings, with the use recorded.
		used := base.Add(time.Minute)
		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", used, strict("g1"), domain.RotateFunc(func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
			g.LastUsedAt = used
			return liveToken("rt-1b", g.ID), nil
		}))

		require.NoError(t, err)
		got, err := s.ListGrants(t.Context(), ports.GrantFilter{Subject: "alice", ClientID: "c1"}, ports.Page{Limit: 10}, base)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, used, got[0].LastUsedAt)

		// Reuse of the rotated token revokes g1; a sweep removes g4.
		_, _, err = s.RotateRefreshToken(t.Context(), "rt-1", used.Add(time.Second), strict("g1"), domain.RotateFunc(discarded(t, s)))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		_, err = s.Sweep(t.Context(), base)
		require.NoError(t, err)
		require.NoError(t, s.RevokeGrant(t.Context(), "g3"))
		before := base.Add(-time.Hour) // g4 would be live then, if anything kept it
		for _, filter := range []ports.GrantFilter{{}, {Subject: "alice"}, {ClientID: "c1"}} {
			gs, err := s.ListGrants(t.Context(), filter, ports.Page{Limit: 100}, before)
			require.NoError(t, err)
			for _, g := range gs {
				require.NotContains(t, []string{"g1", "g3", "g4"}, g.ID, "%+v", filter)
			}
		}
		n, err := s.RevokeGrants(t.Context(), ports.GrantFilter{Subject: "alice"})
		require.NoError(t, err)
		require.Equal(t, 1, n, "only g2 was left of alice's")

		// New grants of the same subject and client are found again.
		seedGrant(t, s, ownedGrant("g7", "alice", "c1"))
		require.Equal(t, []string{"g7"}, listGrants(t, s, ports.GrantFilter{Subject: "alice", ClientID: "c1"}, "", 10))
	})

	t.Run("the operator's methods refuse a cancelled context and change nothing", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateClient(t.Context(), fullClient("c1")))
		seed(t, s)
		cancelled, cancel := context.WithCancel(t.Context())
		cancel()
		calls := map[string]func(ctx context.Context) error{
			"ListClients": func(ctx context.Context) error {
				_, err := s.ListClients(ctx, ports.Page{Limit: 10})
				return err
			},
			"DeleteClient": func(ctx context.Context) error {
				_, err := s.DeleteClient(ctx, "c1")
				return err
			},
			"ListGrants": func(ctx context.Context) error {
				_, err := s.ListGrants(ctx, ports.GrantFilter{Subject: "alice"}, ports.Page{Limit: 10}, base)
				return err
			},
			"RevokeGrants": func(ctx context.Context) error {
				_, err := s.RevokeGrants(ctx, ports.GrantFilter{Subject: "alice"})
				return err
			},
		}
		for name, call := range calls {
			require.ErrorIs(t, call(cancelled), context.Canceled, name)
		}
		_, err := s.GetClient(t.Context(), "c1")
		require.NoError(t, err)
		require.Equal(t, []string{"g1", "g2", "g3", "g5", "g6"}, listGrants(t, s, ports.GrantFilter{}, "", 100))
	})
}
