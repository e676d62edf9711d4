package redisstore

// keyspace names the keys of one prefix; the package comment lists them.
type keyspace struct{ p string }

func (k keyspace) stream(id string) string      { return k.p + ".stream.{st:" + id + "}" }
func (k keyspace) streamSales(id string) string { return k.stream(id) + ".sales" }

func (k keyspace) sale(id string) string       { return k.p + ".sale.{s:" + id + "}" }
func (k keyspace) held(saleID string) string   { return k.sale(saleID) + ".held" }
func (k keyspace) orders(saleID string) string { return k.sale(saleID) + ".orders" }
func (k keyspace) due(saleID string) string    { return k.sale(saleID) + ".due" }
func (k keyspace) order(saleID, orderID string) string {
	return k.sale(saleID) + ".order." + orderID
}

func (k keyspace) orderSale(orderID string) string { return k.p + ".order.{o:" + orderID + "}" }
func (k keyspace) buyerOrders(buyer string) string { return k.p + ".buyer.{b:" + buyer + "}.orders" }
func (k keyspace) idem(key string) string          { return k.p + ".idem.{i:" + key + "}" }
func (k keyspace) openSales() string               { return "{" + k.p + ".sales}.open" }
func (k keyspace) lifecycle() string               { return "{" + k.p + ".sales}.lifecycle" }
