package memstore_test

import (
	"testing"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/test/storetest"
)

func TestMemstorePassesTheStoreConformanceSuite(t *testing.T) {
	storetest.Run(t, func(*testing.T) ports.Store { return memstore.New() })
}
