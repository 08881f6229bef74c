package memstore

// The Store's three indexes (by token hash, by ID, by user) are hash tables
// of their own rather than Go maps. A Go map keeps a copy of each key next
// to its value, and its tables, all splitting at about the same size, are
// half empty just after they do: at a million sessions, the three maps took
// about 150 of the 390 bytes a session cost (38 bytes an entry keyed by
// uint64, 56 keyed by string). A chainedIndex keeps no keys, since the
// entry has them: it costs a pointer in the entry, linking the next entry
// of its bucket, and one or two in the bucket array (8 bytes a session at
// a million).

// The indexes, each the position of its link in entry.links.
const (
	byHash = iota
	byID
	byUser
	indexCount
)

// movePerWrite is how many buckets of the old table each insertion or
// removal moves while a chainedIndex grows. Growth starts when the index
// holds as many entries as the old table has buckets, and the next growth
// needs as many insertions again, so any number of at least one finishes
// moving in time; 8 spreads the work thinly and finishes soon.
const movePerWrite = 8

// chainedIndex is a hash table of entries, chained through
// entry.links[link]. Its bucket count is a power of two, at least the
// number of entries, so chains average at most one entry.
//
// It grows without stopping the world: a new table of twice the buckets
// takes over and the old one's buckets are moved over a few at a time by
// later insertions and removals, so no single call rehashes a million
// entries under the Store's lock. Lookups change nothing, so that they can
// run under a read lock; an entry is always in the one bucket bucketOf
// names, in the old table or the new.
//
// It does not shrink: like a Go map, it keeps the buckets of its largest
// size (8 bytes each).
type chainedIndex struct {
	link    int                 // which of entry.links chains this index
	hashOf  func(*entry) uint64 // the hash of an entry's key, to move it
	buckets []*entry
	old     []*entry // the table being moved into buckets, or nil
	moved   int      // old[:moved] has been moved (and is all nil)
	n       int      // entries
}

// bucketOf returns the bucket that holds, or would hold, an entry with
// hash h.
func (x *chainedIndex) bucketOf(h uint64) **entry {
	if x.old != nil {
		if i := h & uint64(len(x.old)-1); i >= uint64(x.moved) {
			return &x.old[i]
		}
	}
	return &x.buckets[h&uint64(len(x.buckets)-1)]
}

// find returns the first entry with hash h for which match is true, or nil.
func (x *chainedIndex) find(h uint64, match func(*entry) bool) *entry {
	if x.n == 0 {
		return nil
	}
	for e := *x.bucketOf(h); e != nil; e = e.links[x.link] {
		if match(e) {
			return e
		}
	}
	return nil
}

// insert adds e, whose key has hash h.
func (x *chainedIndex) insert(e *entry, h uint64) {
	x.moveSome()
	if x.n >= len(x.buckets) {
		x.grow()
	}
	b := x.bucketOf(h)
	e.links[x.link] = *b
	*b = e
	x.n++
}

// remove takes out e, whose key has hash h; e must be in the index.
func (x *chainedIndex) remove(e *entry, h uint64) {
	x.moveSome()
	p := x.bucketOf(h)
	for *p != e {
		p = &(*p).links[x.link]
	}
	*p = e.links[x.link]
	e.links[x.link] = nil
	x.n--
}

// grow starts moving the entries into a table of twice the buckets.
func (x *chainedIndex) grow() {
	for x.old != nil { // never in practice: see movePerWrite
		x.moveSome()
	}
	x.old, x.moved = x.buckets, 0
	x.buckets = make([]*entry, max(8, 2*len(x.buckets)))
	if len(x.old) == 0 {
		x.old = nil
	}
}

// moveSome moves up to movePerWrite buckets of the old table, if any, into
// the new one.
func (x *chainedIndex) moveSome() {
	if x.old == nil {
		return
	}
	mask := uint64(len(x.buckets) - 1)
	for end := min(x.moved+movePerWrite, len(x.old)); x.moved < end; x.moved++ {
		for e := x.old[x.moved]; e != nil; {
			next := e.links[x.link]
			b := &x.buckets[x.hashOf(e)&mask]
			e.links[x.link] = *b
			*b = e
			e = next
		}
		x.old[x.moved] = nil
	}
	if x.moved == len(x.old) {
		x.old, x.moved = nil, 0
	}
}

// all calls yield with every entry of the index until it returns false.
func (x *chainedIndex) all(yield func(*entry) bool) {
	for _, table := range [][]*entry{x.old, x.buckets} {
		for _, first := range table {
			for e := first; e != nil; e = e.links[x.link] {
				if !yield(e) {
					return
				}
			}
		}
	}
}
