package replay

import (
	"bufio"
	"cmp"
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// rec is one record of a sort: an event in its spill encoding (codec.go),
// the key of one (keyRec), or a bad line's reason and detail.
type rec struct {
	t    int64  // event time, Unix nanoseconds
	hash uint64 // of the event key
	line int32  // input line: the first occurrence of a key wins, reports keep line order
	win  int32  // index of the org's event-time window in windows.of
	// b is valid until the next record is read from the same sequence.
	b []byte
}

// entry indexes one record of an in-memory run.
type entry struct {
	t       int64
	hash    uint64
	block   int32
	off     int32
	n       int32
	line    int32
	win     int32
	dropped bool // a later occurrence of a kept key (drop)
}

// entryCost is what a record costs besides its bytes: its entry, and the
// spare capacity of an index grown by appending.
const entryCost = 2 * 40

// recHeader is a spilled record's fixed part: t, hash, line, win, len(b),
// and a flag byte, set (drop) once the record is known to be a later
// occurrence of a kept key.
const (
	recHeader = 8 + 8 + 4 + 4 + 4 + 1
	flagAt    = recHeader - 1
)

// maxFanIn is the most runs merged at once; more are merged in passes, so
// that a tiny budget over a huge input never runs out of file descriptors.
// 128: a county's 20 M events (about 50 runs of events and 80 of keys
// under the default budget) merge in one pass.
const maxFanIn = 128

// order is how a sorter orders its records; every order is total (it ends
// with the line, or with the key among deduplicated events).
type order int

const (
	// byKey groups the occurrences of a key together, in input order.
	byKey order = iota
	// byTime is the order events go to the evaluator: event time drives
	// every check; the key orders ties so that the same input always
	// yields the same alerts, whatever order it came in.
	byTime
	// byLine orders bad-line reports.
	byLine
)

// compare is a method, not a function value, so that the records compared
// stay on the stack.
func (o order) compare(a, b *rec) int {
	switch o {
	case byKey:
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		if c := compareKeys(a.b, b.b); c != 0 {
			return c
		}
		return cmp.Compare(a.line, b.line)
	case byTime:
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return compareKeys(a.b, b.b)
	default:
		return cmp.Compare(a.line, b.line)
	}
}

// sorter sorts records in a memory budget: records are kept in an arena
// of fixed blocks with an index entry each; when the next one would take
// the arena and index past the budget, they are sorted and written to a
// file (a run), and the runs are merged at the end. A sorter that never
// spilled is one run, sorted in memory.
type sorter struct {
	order  order
	budget int64
	spill  *spillDir
	block  int // arena block size

	arena [][]byte // blocks; a spilled run's are kept for the next
	used  int      // blocks in use
	held  int64    // their capacity
	index []entry
	files []string
	count int // records added

	// written, if set, is told where each record lies once its place is
	// final: in a run written to disk (run, the byte offset in it), or,
	// for a sorter that never spilled, once sorted (run -1, the position
	// in the index). The events' sorter indexes their keys so.
	written func(r *rec, at place) error
	inOrder bool // the index is sorted (finish): sorted need not sort again
	marks   map[int]*os.File

	// background sorts and writes each run on a goroutine of its own
	// while the next fills, each within half the budget: the events'
	// sorter, so that reading goes on while a run is written.
	background bool
	writing    chan written // the run being written, nil if none
	spare      [][]byte     // the blocks of the run last written in the background
	spareIndex []entry
}

// written is the outcome of a run written in the background.
type written struct {
	name  string
	arena [][]byte
	index []entry
	err   error
}

// place is where a record of a sorter lies: run -1 is the in-memory index.
type place struct {
	run int
	off int64
}

func newSorter(o order, budget int64, spill *spillDir) *sorter {
	// Blocks small against the budget, so that a tiny one still spills
	// by records, not by whole blocks.
	return &sorter{order: o, budget: budget, spill: spill, block: int(min(8<<20, max(4<<10, budget/8)))}
}

// memory is what the in-memory run holds: whole blocks, whatever they
// contain, and its index.
func (s *sorter) memory() int64 { return s.held + int64(len(s.index))*entryCost }

// add keeps r, spilling the in-memory run first if r would take it past
// the budget.
func (s *sorter) add(r *rec) error {
	s.count++
	need := int64(entryCost)
	last := s.used - 1
	if last < 0 || len(s.arena[last])+len(r.b) > cap(s.arena[last]) {
		need += int64(max(s.block, len(r.b)))
	}
	limit := s.budget
	if s.background {
		limit /= 2
	}
	if len(s.index) > 0 && s.memory()+need > limit {
		if err := s.spillRun(); err != nil {
			return err
		}
		last = -1
	}
	if last < 0 || len(s.arena[last])+len(r.b) > cap(s.arena[last]) {
		if s.used < len(s.arena) && cap(s.arena[s.used]) >= len(r.b) {
			s.arena[s.used] = s.arena[s.used][:0]
		} else {
			// A spare block too small for r is dropped, not kept beside.
			b := make([]byte, 0, max(s.block, len(r.b)))
			if s.used < len(s.arena) {
				s.arena[s.used] = b
			} else {
				s.arena = append(s.arena, b)
			}
		}
		s.held += int64(cap(s.arena[s.used]))
		s.used++
		last = s.used - 1
	}
	off := len(s.arena[last])
	s.arena[last] = append(s.arena[last], r.b...)
	s.index = append(s.index, entry{t: r.t, hash: r.hash, block: int32(last), off: int32(off), n: int32(len(r.b)), line: r.line, win: r.win})
	return nil
}

func (s *sorter) rec(e entry) rec { return recOf(s.arena, e) }

func recOf(arena [][]byte, e entry) rec {
	return rec{t: e.t, hash: e.hash, line: e.line, win: e.win, b: arena[e.block][e.off : e.off+e.n]}
}

// sortIndex sorts the in-memory run.
func (s *sorter) sortIndex() { sortEntries(s.order, s.arena, s.index) }

// sortEntries sorts index, whose records lie in arena, comparing the
// entries' fixed fields first: the bytes are looked at only when two key
// hashes are equal.
func sortEntries(o order, arena [][]byte, index []entry) {
	keys := func(a, b entry) int {
		return compareKeys(arena[a.block][a.off:a.off+a.n], arena[b.block][b.off:b.off+b.n])
	}
	switch o {
	case byKey:
		slices.SortFunc(index, func(a, b entry) int {
			if a.hash != b.hash {
				return cmp.Compare(a.hash, b.hash)
			}
			return cmp.Or(keys(a, b), cmp.Compare(a.line, b.line))
		})
	case byTime:
		slices.SortFunc(index, func(a, b entry) int {
			if a.t != b.t {
				return cmp.Compare(a.t, b.t)
			}
			if a.hash != b.hash {
				return cmp.Compare(a.hash, b.hash)
			}
			return keys(a, b)
		})
	default:
		slices.SortFunc(index, func(a, b entry) int { return cmp.Compare(a.line, b.line) })
	}
}

// spillRun writes the in-memory run, sorted, to a file and empties it,
// keeping its blocks for the next (in the background: the blocks of the
// run before).
func (s *sorter) spillRun() error {
	if !s.background {
		name, err := s.writeSorted(len(s.files), s.arena, s.index)
		if err != nil {
			return err
		}
		s.files = append(s.files, name)
		s.index = s.index[:0]
		s.used, s.held = 0, 0
		return nil
	}
	if err := s.wait(); err != nil {
		return err
	}
	run, arena, index := len(s.files), s.arena, s.index
	s.files = append(s.files, "") // named by wait
	s.writing = make(chan written, 1)
	go func() {
		name, err := s.writeSorted(run, arena, index)
		s.writing <- written{name: name, arena: arena, index: index[:0], err: err}
	}()
	s.arena, s.index, s.spare, s.spareIndex = s.spare, s.spareIndex, nil, nil
	s.used, s.held = 0, 0
	return nil
}

// wait waits for the run being written in the background, if any, and
// keeps its blocks for the next.
func (s *sorter) wait() error {
	if s.writing == nil {
		return nil
	}
	w := <-s.writing
	s.writing = nil
	if w.err != nil {
		return w.err
	}
	s.files[len(s.files)-1] = w.name
	s.spare, s.spareIndex = w.arena, w.index
	return nil
}

// writeSorted sorts index, whose records lie in arena, and writes them as
// run number run.
func (s *sorter) writeSorted(run int, arena [][]byte, index []entry) (string, error) {
	sortEntries(s.order, arena, index)
	i := 0
	return s.writeRun(run, func() (*rec, bool, error) {
		if i == len(index) {
			return nil, false, nil
		}
		r := recOf(arena, index[i])
		i++
		return &r, true, nil
	}, s.written)
}

// writeRun writes the records next yields to a new file of the spill
// directory and returns its name; written, if set, is told where each
// record went, as run number run.
func (s *sorter) writeRun(run int, next func() (*rec, bool, error), written func(*rec, place) error) (string, error) {
	f, err := s.spill.create()
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var off int64
	for {
		r, ok, err := next()
		if err != nil {
			f.Close()
			return "", err
		}
		if !ok {
			break
		}
		if written != nil {
			if err := written(r, place{run, off}); err != nil {
				f.Close()
				return "", err
			}
		}
		if err := writeRec(w, r); err != nil {
			f.Close()
			return "", fmt.Errorf("replay: spill: %w", err)
		}
		off += recHeader + int64(len(r.b))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", fmt.Errorf("replay: spill: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("replay: spill: %w", err)
	}
	return f.Name(), nil
}

// removeRuns deletes the runs on disk once their merge is over, so that
// the input's later copies (the events kept, by time) are not on disk
// beside them.
func (s *sorter) removeRuns() error {
	for _, name := range s.files {
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("replay: spill: %w", err)
		}
	}
	s.files = nil
	return nil
}

// spilled says whether any run went to disk.
func (s *sorter) spilled() bool { return len(s.files) > 0 }

// finish puts every record in its final place, so that written has been
// told of each: a sorter that spilled writes its last run too and gives
// its memory back; one that did not sorts its index.
func (s *sorter) finish() error {
	if err := s.wait(); err != nil {
		return err
	}
	if !s.spilled() {
		if !s.inOrder {
			s.sortIndex()
			s.inOrder = true
			if s.written != nil {
				for i := range s.index {
					r := s.rec(s.index[i])
					if err := s.written(&r, place{-1, int64(i)}); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if len(s.index) > 0 {
		if err := s.spillRun(); err != nil {
			return err
		}
		if err := s.wait(); err != nil {
			return err
		}
	}
	s.arena, s.index, s.used, s.held = nil, nil, 0, 0
	s.spare, s.spareIndex = nil, nil
	return nil
}

// drop marks the record at p, so that sorted skips it.
func (s *sorter) drop(p place) error {
	if p.run < 0 {
		s.index[p.off].dropped = true
		return nil
	}
	f, err := s.markFile(p.run)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte{1}, p.off+flagAt); err != nil {
		return fmt.Errorf("replay: spill: %w", err)
	}
	return nil
}

// fetch returns the bytes of the record at p, in buf's storage if it must
// read them.
func (s *sorter) fetch(p place, buf []byte) ([]byte, error) {
	if p.run < 0 {
		e := s.index[p.off]
		return s.arena[e.block][e.off : e.off+e.n], nil
	}
	f, err := s.markFile(p.run)
	if err != nil {
		return nil, err
	}
	var h [recHeader]byte
	if _, err := f.ReadAt(h[:], p.off); err != nil {
		return nil, fmt.Errorf("replay: read spilled run: %w", err)
	}
	n := int(binary.LittleEndian.Uint32(h[24:]))
	buf = slices.Grow(buf[:0], n)[:n]
	if _, err := f.ReadAt(buf, p.off+recHeader); err != nil {
		return nil, fmt.Errorf("replay: read spilled run: %w", err)
	}
	return buf, nil
}

// maxMarkFiles bounds the runs held open by drop and fetch.
const maxMarkFiles = 128

func (s *sorter) markFile(run int) (*os.File, error) {
	if f, ok := s.marks[run]; ok {
		return f, nil
	}
	if len(s.marks) >= maxMarkFiles {
		s.closeMarks()
	}
	f, err := os.OpenFile(s.files[run], os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("replay: open spilled run: %w", err)
	}
	if s.marks == nil {
		s.marks = map[int]*os.File{}
	}
	s.marks[run] = f
	return f, nil
}

// closeMarks closes the runs drop and fetch opened.
func (s *sorter) closeMarks() {
	for run, f := range s.marks {
		f.Close()
		delete(s.marks, run)
	}
}

// sorted returns the records in order, without those dropped. A sorter
// that spilled writes its last run too and gives its memory back before
// merging.
func (s *sorter) sorted() (sequence, error) {
	if err := s.finish(); err != nil {
		return nil, err
	}
	s.closeMarks()
	if !s.spilled() {
		return &memSeq{s: s, index: s.index}, nil
	}
	for len(s.files) > maxFanIn {
		f, err := s.mergeFiles(s.files[:maxFanIn])
		if err != nil {
			return nil, err
		}
		s.files = append(s.files[maxFanIn:], f)
	}
	return newMerger(s.files, s.order, s.readBuffer(len(s.files)))
}

// readBuffer sizes each run's read buffer so that a merge stays within an
// eighth of the budget, between 16 KiB and 1 MiB.
func (s *sorter) readBuffer(runs int) int {
	return int(min(1<<20, max(16<<10, s.budget/8/int64(runs))))
}

// mergeFiles merges runs into one, in a pass before the final merge, and
// removes them.
func (s *sorter) mergeFiles(files []string) (string, error) {
	m, err := newMerger(files, s.order, s.readBuffer(len(files)))
	if err != nil {
		return "", err
	}
	name, err := s.writeRun(-1, m.next, nil)
	m.close()
	if err != nil {
		return "", err
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return "", fmt.Errorf("replay: spill: %w", err)
		}
	}
	return name, nil
}

// sequence is records in order; a record is valid until two more calls.
type sequence interface {
	next() (*rec, bool, error)
	close()
}

type memSeq struct {
	s     *sorter
	index []entry
	i     int
	cur   rec
}

func (m *memSeq) next() (*rec, bool, error) {
	for m.i < len(m.index) && m.index[m.i].dropped {
		m.i++
	}
	if m.i == len(m.index) {
		return nil, false, nil
	}
	m.cur = m.s.rec(m.index[m.i])
	m.i++
	return &m.cur, true, nil
}

func (m *memSeq) close() {}

func writeRec(w *bufio.Writer, r *rec) error {
	h := w.AvailableBuffer()[:0] // appended in place: no header allocated per record
	h = binary.LittleEndian.AppendUint64(h, uint64(r.t))
	h = binary.LittleEndian.AppendUint64(h, r.hash)
	h = binary.LittleEndian.AppendUint32(h, uint32(r.line))
	h = binary.LittleEndian.AppendUint32(h, uint32(r.win))
	h = binary.LittleEndian.AppendUint32(h, uint32(len(r.b)))
	h = append(h, 0) // not dropped
	if _, err := w.Write(h); err != nil {
		return err
	}
	_, err := w.Write(r.b)
	return err
}

// runReader reads one spilled run. It alternates between two buffers, so
// that a record stays valid until two more are read (judge compares a key
// with the previous one's without copying every record).
type runReader struct {
	f   *os.File
	r   *bufio.Reader
	cur rec
	buf [2][]byte
	hdr [recHeader]byte
}

// advance reads the next record into cur, skipping those dropped; false
// at the end of the run.
func (rr *runReader) advance() (bool, error) {
	for {
		ok, err := rr.read()
		if !ok || err != nil || rr.hdr[flagAt] == 0 {
			return ok, err
		}
	}
}

// read reads the next record into cur.
func (rr *runReader) read() (bool, error) {
	h := rr.hdr[:]
	if _, err := io.ReadFull(rr.r, h); err != nil {
		if err == io.EOF {
			return false, nil
		}
		return false, fmt.Errorf("replay: read spilled run: %w", err)
	}
	n := int(binary.LittleEndian.Uint32(h[24:]))
	rr.buf[0], rr.buf[1] = rr.buf[1], rr.buf[0]
	if cap(rr.buf[0]) < n {
		rr.buf[0] = make([]byte, n)
	}
	rr.cur = rec{t: int64(binary.LittleEndian.Uint64(h[0:])), hash: binary.LittleEndian.Uint64(h[8:]),
		line: int32(binary.LittleEndian.Uint32(h[16:])), win: int32(binary.LittleEndian.Uint32(h[20:])), b: rr.buf[0][:n]}
	if _, err := io.ReadFull(rr.r, rr.cur.b); err != nil {
		return false, fmt.Errorf("replay: read spilled run: %w", err)
	}
	return true, nil
}

// merger is a k-way merge of runs: a heap of the runs by their current
// record.
type merger struct {
	runs  []*runReader
	heap  []int // indexes of runs with a current record
	order order
	last  int // the run whose record was returned last: advanced on the next call
}

func newMerger(files []string, o order, bufSize int) (*merger, error) {
	m := &merger{order: o, last: -1}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("replay: open spilled run: %w", err)
		}
		rr := &runReader{f: f, r: bufio.NewReaderSize(f, bufSize)}
		m.runs = append(m.runs, rr)
		ok, err := rr.advance()
		if err != nil {
			m.close()
			return nil, err
		}
		if ok {
			m.heap = append(m.heap, len(m.runs)-1)
		}
	}
	heap.Init(m)
	return m, nil
}

func (m *merger) Len() int { return len(m.heap) }
func (m *merger) Less(i, j int) bool {
	return m.order.compare(&m.runs[m.heap[i]].cur, &m.runs[m.heap[j]].cur) < 0
}
func (m *merger) Swap(i, j int) { m.heap[i], m.heap[j] = m.heap[j], m.heap[i] }
func (m *merger) Push(x any)    { m.heap = append(m.heap, x.(int)) }
func (m *merger) Pop() any {
	x := m.heap[len(m.heap)-1]
	m.heap = m.heap[:len(m.heap)-1]
	return x
}

func (m *merger) next() (*rec, bool, error) {
	if m.last >= 0 {
		ok, err := m.runs[m.last].advance()
		if err != nil {
			return nil, false, err
		}
		if ok {
			heap.Fix(m, 0)
		} else {
			heap.Pop(m)
		}
		m.last = -1
	}
	if len(m.heap) == 0 {
		return nil, false, nil
	}
	m.last = m.heap[0]
	return &m.runs[m.last].cur, true, nil
}

func (m *merger) close() {
	for _, rr := range m.runs {
		if rr.f != nil {
			rr.f.Close()
			rr.f = nil
		}
	}
}

// spillDir is a replay's directory of runs, made on the first spill and
// removed with everything in it when the replay ends, however it ends.
type spillDir struct {
	parent string // "" is os.TempDir()
	mu     sync.Mutex
	dir    string
	n      int
}

func (d *spillDir) create() (*os.File, error) {
	// The events' runs are written on a goroutine of their own.
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dir == "" {
		dir, err := os.MkdirTemp(d.parent, "dpiawatch-replay-*")
		if err != nil {
			return nil, fmt.Errorf("replay: spill directory: %w", err)
		}
		d.dir = dir
	}
	d.n++
	f, err := os.OpenFile(filepath.Join(d.dir, fmt.Sprintf("run-%06d", d.n)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replay: spill: %w", err)
	}
	return f, nil
}

func (d *spillDir) remove() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dir == "" {
		return nil
	}
	if err := os.RemoveAll(d.dir); err != nil {
		return fmt.Errorf("replay: remove spill directory: %w", err)
	}
	return nil
}
