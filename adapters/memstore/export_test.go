package memstore_test

import (
	"testing"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/test/storetest"
)

func TestMemstorePassesTheCopyConformanceSuite(t *testing.T) {
	storetest.RunCopy(t, func(*testing.T) storetest.CopyStore { return memstore.New() })
}
