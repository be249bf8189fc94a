package cimd

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOnlyPublicUnicastAddressesAreDialled(t *testing.T) {
	cases := []struct {
		addr          string
		public        bool
		withAllowance bool
	}{
		{"93.184.215.14", true, true},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true, true},
		{"127.0.0.1", false, true},
		{"127.9.9.9", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"10.1.2.3", false, true},
		{"172.16.0.1", false, true},
		{"192.168.1.1", false, true},
		{"fd00::1", false, true},
		{"169.254.169.254", false, false}, // cloud metadata, even in development
		{"fe80::1", false, false},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"224.0.0.1", false, false},
		{"ff02::1", false, false},
		{"255.255.255.255", false, false},
		{"100.64.0.1", false, false},
		{"192.0.2.1", false, false},
		{"198.18.0.1", false, false},
		{"64:ff9b::7f00:1", false, false},
		{"2002:7f00:1::", false, false},
		{"2001:db8::1", false, false},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tc.addr)
			require.Equal(t, tc.public, addressAllowed(a, false))
			require.Equal(t, tc.withAllowance, addressAllowed(a, true))
		})
	}
}

func TestTheDialerChecksTheResolvedAddress(t *testing.T) {
	control := dialControl(false)
	require.ErrorIs(t, control("tcp4", "127.0.0.1:443", nil), errAddressRefused)
	require.ErrorIs(t, control("tcp6", "[::1]:443", nil), errAddressRefused)
	require.NoError(t, control("tcp4", "93.184.215.14:443", nil))
	require.Error(t, control("udp4", "93.184.215.14:443", nil))
	require.Error(t, control("tcp4", "not-an-address", nil))
	require.NoError(t, dialControl(true)("tcp4", "127.0.0.1:443", nil))
}
