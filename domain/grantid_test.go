package domain_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Grant ids sort by creation time and keep a random part.
func TestGrantIDsSortByCreationTime(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	random := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	earlier := domain.NewGrantID(t0, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz")
	later := domain.NewGrantID(t0.Add(time.Millisecond), random)
	require.Less(t, earlier, later, "a later grant sorts after an earlier one whatever its random part")
	require.Len(t, later, 12+22)
	require.NotEqual(t, domain.NewGrantID(t0, random), domain.NewGrantID(t0, "B"+random[1:]), "the random part is kept")
	require.Equal(t, "000000000000x", domain.NewGrantID(time.Unix(-5, 0), "x"), "times before 1970 clamp to zero")
}
