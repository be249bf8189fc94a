package domain_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
)

func TestDecideRefreshAllowsOnlyAPromptRetryOfTheSameClientWhileTheSuccessorIsUnused(t *testing.T) {
	rotatedAt := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	live := domain.RefreshToken{Hash: "rt-1", ClientID: "c", ExpiresAt: rotatedAt.Add(time.Hour)}
	rotated := live
	rotated.RotatedAt, rotated.SuccessorHash = rotatedAt, "rt-2"
	succ := domain.RefreshToken{Hash: "rt-2", ClientID: "c", IssuedAt: rotatedAt, ExpiresAt: rotatedAt.Add(time.Hour)}
	used := succ
	used.RotatedAt, used.SuccessorHash = rotatedAt.Add(time.Second), "rt-3"
	withdrawn := succ
	withdrawn.RotatedAt = rotatedAt.Add(time.Second)
	expiredSucc := succ
	expiredSucc.ExpiresAt = rotatedAt.Add(time.Second)
	withdrawnPresented := rotated
	withdrawnPresented.SuccessorHash = ""

	use := domain.RefreshUse{ClientID: "c", Grace: time.Minute}
	other := domain.RefreshUse{ClientID: "other", Grace: time.Minute}
	strict := domain.RefreshUse{ClientID: "c"}
	soon := rotatedAt.Add(10 * time.Second)

	cases := []struct {
		name      string
		presented domain.RefreshToken
		successor domain.RefreshToken
		use       domain.RefreshUse
		now       time.Time
		want      domain.RefreshDecision
	}{
		{"a live token of the presenter", live, domain.RefreshToken{}, use, soon, domain.RefreshRotate},
		{"a live token without a window", live, domain.RefreshToken{}, strict, soon, domain.RefreshRotate},
		{"a live token of another client", live, domain.RefreshToken{}, other, soon, domain.RefreshRefuse},
		{"a prompt retry, successor unused", rotated, succ, use, soon, domain.RefreshRetry},
		{"a retry a nanosecond before the window ends", rotated, succ, use, rotatedAt.Add(time.Minute - 1), domain.RefreshRetry},
		{"a retry as the window ends", rotated, succ, use, rotatedAt.Add(time.Minute), domain.RefreshRevoke},
		{"a retry without a window", rotated, succ, strict, soon, domain.RefreshRevoke},
		{"a retry by another client", rotated, succ, other, soon, domain.RefreshRevoke},
		{"a retry after the successor was used", rotated, used, use, soon, domain.RefreshRevoke},
		{"a retry whose successor was withdrawn", rotated, withdrawn, use, soon, domain.RefreshRevoke},
		{"a retry whose successor is gone", rotated, domain.RefreshToken{}, use, soon, domain.RefreshRevoke},
		{"a retry whose successor has expired", rotated, expiredSucc, use, soon, domain.RefreshRevoke},
		{"a retry naming another successor", rotated, domain.RefreshToken{Hash: "rt-9", ExpiresAt: succ.ExpiresAt}, use, soon, domain.RefreshRevoke},
		{"the withdrawn token itself", withdrawnPresented, domain.RefreshToken{}, use, soon, domain.RefreshRevoke},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want.String(), domain.DecideRefresh(tc.presented, tc.successor, tc.use, tc.now).String())
		})
	}
}
