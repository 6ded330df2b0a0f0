package llm

import (
	"crypto/sha256"
	"encoding/binary"

	lru "github.com/hashicorp/golang-lru/v2"
)

// cacheKey is the SHA-256 of what determines a result; texts are never kept
// as keys.
type cacheKey [sha256.Size]byte

// newCacheKey hashes the model, the dimensions and the text.
func newCacheKey(model string, dimensions int, text string) cacheKey {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(model)))
	h.Write(n[:])
	h.Write([]byte(model))
	binary.BigEndian.PutUint64(n[:], uint64(dimensions)) //nolint:gosec // Dimensions are validated non-negative.
	h.Write(n[:])
	h.Write([]byte(text))
	var k cacheKey
	h.Sum(k[:0])
	return k
}

// cache is a bounded LRU of results by content hash, safe for concurrent
// use. A nil *cache is disabled.
type cache[V any] struct {
	lru *lru.Cache[cacheKey, V]
	m   *metrics
}

// newCache returns a cache of size entries, or nil when size is 0.
func newCache[V any](size int, m *metrics) (*cache[V], error) {
	if size <= 0 {
		return nil, nil
	}
	l, err := lru.New[cacheKey, V](size)
	if err != nil {
		return nil, err
	}
	return &cache[V]{lru: l, m: m}, nil
}

// get looks k up.
func (c *cache[V]) get(k cacheKey) (V, bool) {
	if c == nil {
		var zero V
		return zero, false
	}
	c.m.cacheLooks.Inc()
	v, ok := c.lru.Get(k)
	if ok {
		c.m.cacheHits.Inc()
	}
	return v, ok
}

// add stores v under k.
func (c *cache[V]) add(k cacheKey, v V) {
	if c != nil {
		c.lru.Add(k, v)
	}
}
