package memstore

import (
	"container/heap"

	"github.com/sessionguard/sessionguard/session"
)

// chunkLen is the number of items in each chunk of a chunked slice.
const chunkLen = 4096

// chunked is a slice kept in fixed-size chunks. A plain slice of a million
// items grows by copying all of them, megabytes at once under the Store's
// lock; a chunked one only ever appends a chunk.
type chunked[T any] struct {
	chunks []*[chunkLen]T
	n      int
}

func (c *chunked[T]) len() int { return c.n }

func (c *chunked[T]) at(i int) *T { return &c.chunks[i/chunkLen][i%chunkLen] }

func (c *chunked[T]) push(v T) {
	if c.n == len(c.chunks)*chunkLen {
		c.chunks = append(c.chunks, new([chunkLen]T))
	}
	*c.at(c.n) = v
	c.n++
}

// pop removes and returns the last item. It frees a chunk only once the one
// after it is empty too, so that a heap hovering at a chunk's edge does not
// allocate and free a chunk with every push and pop.
func (c *chunked[T]) pop() T {
	c.n--
	p := c.at(c.n)
	v := *p
	var zero T
	*p = zero // let what it points to be collected
	if last := len(c.chunks) - 1; last > 0 && c.n <= (last-1)*chunkLen {
		c.chunks[last] = nil
		c.chunks = c.chunks[:last]
	}
	return v
}

// expiryHeap orders live sessions by expiry, soonest first, for
// container/heap. Each entry knows its index, so a Touch, Renew or End fixes
// or removes it in place in O(log n): the heap never holds stale entries,
// and its size is the number of live sessions.
type expiryHeap struct{ items chunked[*entry] }

func (h *expiryHeap) Len() int { return h.items.len() }

func (h *expiryHeap) Less(i, j int) bool {
	return (*h.items.at(i)).expiresAt < (*h.items.at(j)).expiresAt
}

func (h *expiryHeap) Swap(i, j int) {
	a, b := h.items.at(i), h.items.at(j)
	*a, *b = *b, *a
	(*a).heapIndex = int32(i)
	(*b).heapIndex = int32(j)
}

func (h *expiryHeap) Push(x any) {
	e := x.(*entry)
	e.heapIndex = int32(h.items.len())
	h.items.push(e)
}

func (h *expiryHeap) Pop() any {
	e := h.items.pop()
	e.heapIndex = -1
	return e
}

// first returns the session with the soonest expiry, or nil.
func (h *expiryHeap) first() *entry {
	if h.items.len() == 0 {
		return nil
	}
	return *h.items.at(0)
}

// retentionItem is an ended token waiting for its KeepUntil.
type retentionItem struct {
	keepUntil int64
	hash      session.TokenHash
}

// retentionHeap orders ended tokens by KeepUntil, soonest first. Nothing
// removes an ended token early, so items are only ever popped; one that no
// longer matches Store.ended is skipped then. A sweep of a million sessions
// pushes a million items, hence the chunks.
type retentionHeap struct{ items chunked[retentionItem] }

func (h *retentionHeap) Len() int { return h.items.len() }

func (h *retentionHeap) Less(i, j int) bool {
	return h.items.at(i).keepUntil < h.items.at(j).keepUntil
}

func (h *retentionHeap) Swap(i, j int) {
	a, b := h.items.at(i), h.items.at(j)
	*a, *b = *b, *a
}

func (h *retentionHeap) Push(x any) { h.items.push(x.(retentionItem)) }
func (h *retentionHeap) Pop() any   { return h.items.pop() }

// add and removeFirst are heap.Push and heap.Pop without boxing the 40-byte
// item in an interface: an allocation per ended session otherwise.
func (h *retentionHeap) add(item retentionItem) {
	h.items.push(item)
	heap.Fix(h, h.Len()-1)
}

func (h *retentionHeap) removeFirst() retentionItem {
	last := h.Len() - 1
	h.Swap(0, last)
	item := h.items.pop()
	if last > 0 {
		heap.Fix(h, 0)
	}
	return item
}

// first returns the item with the soonest KeepUntil; ok is false if there
// is none.
func (h *retentionHeap) first() (item retentionItem, ok bool) {
	if h.items.len() == 0 {
		return retentionItem{}, false
	}
	return *h.items.at(0), true
}
