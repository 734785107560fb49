package geo

import (
	"container/list"
	"net/netip"
	"sync"
)

// cache is a bounded LRU of lookup results keyed by address. Entries carry
// the database epoch they were computed under; an entry from an older
// epoch is a miss. It is safe for concurrent use.
type cache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[netip.Addr]*list.Element
}

type cacheEntry struct {
	addr  netip.Addr
	epoch uint64
	info  *Info // never modified once stored
}

func newCache(size int) *cache {
	if size <= 0 {
		return nil
	}
	return &cache{max: size, ll: list.New(), items: make(map[netip.Addr]*list.Element, size)}
}

// get returns the entry of a computed under epoch; the Info is shared:
// never modify it.
func (c *cache) get(a netip.Addr, epoch uint64) (*Info, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[a]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if e.epoch != epoch {
		return nil, false
	}
	c.ll.MoveToFront(el)
	return e.info, true
}

// put stores info (which must not be modified afterwards) for a.
func (c *cache) put(a netip.Addr, epoch uint64, info *Info) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[a]; ok {
		e := el.Value.(*cacheEntry)
		e.epoch, e.info = epoch, info
		c.ll.MoveToFront(el)
		return
	}
	if c.ll.Len() >= c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).addr)
	}
	c.items[a] = c.ll.PushFront(&cacheEntry{addr: a, epoch: epoch, info: info})
}
