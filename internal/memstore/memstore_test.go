package memstore_test

import (
	"testing"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/commerce/commercetest"
	"github.com/livehub/livehub/internal/memstore"
)

func TestStore(t *testing.T) {
	commercetest.RunStoreTests(t, func(t *testing.T) commerce.Store {
		return memstore.New(memstore.Options{})
	})
}
