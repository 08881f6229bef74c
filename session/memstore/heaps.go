package memstore

import "github.com/sessionguard/sessionguard/session"

// deadlineHeap orders live sessions by deadline, soonest first, for
// container/heap. Each entry knows its index, so a Touch, Renew or End fixes
// or removes it in place in O(log n): the heap never holds stale entries,
// and its size is the number of live sessions.
type deadlineHeap []*entry

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].deadline() < h[j].deadline() }

func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex = i
	h[j].heapIndex = j
}

func (h *deadlineHeap) Push(x any) {
	e := x.(*entry)
	e.heapIndex = len(*h)
	*h = append(*h, e)
}

func (h *deadlineHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil // let the entry be collected
	*h = old[:len(old)-1]
	e.heapIndex = -1
	return e
}

// retentionItem is an ended token waiting for its KeepUntil.
type retentionItem struct {
	keepUntil int64
	hash      session.TokenHash
}

// retentionHeap orders ended tokens by KeepUntil, soonest first. Nothing
// removes an ended token early, so items are only ever popped; one that no
// longer matches Store.ended is skipped then.
type retentionHeap []retentionItem

func (h retentionHeap) Len() int           { return len(h) }
func (h retentionHeap) Less(i, j int) bool { return h[i].keepUntil < h[j].keepUntil }
func (h retentionHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retentionHeap) Push(x any)        { *h = append(*h, x.(retentionItem)) }

func (h *retentionHeap) Pop() any {
	old := *h
	item := old[len(old)-1]
	*h = old[:len(old)-1]
	return item
}
