package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
)

// keyChunk bounds the keys of one lookup query (see chunks for their size).
const keyChunk = 1000

// Apply stores one batch as a unit (see store.Writer and the package doc for
// how that holds without transactions). It is idempotent under retry.
func (s *Store) Apply(ctx context.Context, events []event.Event, positions []Position, evaluate store.EvaluateFunc) (store.Result, error) {
	if err := store.CheckPositions(len(events), positions); err != nil {
		return store.Result{}, fmt.Errorf("clickhouse: apply: %w", err)
	}
	start := time.Now()
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	res, step, err := s.apply(ctx, events, positions, evaluate)
	if err != nil {
		s.m.applyErrors.WithLabelValues(step).Inc()
		return store.Result{}, fmt.Errorf("clickhouse: apply: %s: %w", step, err)
	}
	s.m.applyDuration.Observe(time.Since(start).Seconds())
	s.m.stored.Add(float64(res.Stored))
	s.m.duplicates.Add(float64(res.Duplicates))
	s.m.alerts.Add(float64(res.Alerts))
	return res, nil
}

// Steps of Apply, the label values of dpiawatch_store_apply_errors_total.
const (
	stepLookup   = "lookup"
	stepEvaluate = "evaluate"
	stepEvents   = "events"
	stepAlerts   = "alerts"
	stepCommit   = "commit"
)

var applySteps = []string{stepLookup, stepEvaluate, stepEvents, stepAlerts, stepCommit}

func (s *Store) apply(ctx context.Context, events []event.Event, pos []Position, evaluate store.EvaluateFunc) (res store.Result, step string, err error) {
	if err := ctx.Err(); err != nil {
		return res, stepLookup, err
	}

	// The first occurrence of a key within the batch is the event.
	first := make([]int, 0, len(events))
	seen := make(map[event.Key]struct{}, len(events))
	for i := range events {
		k := events[i].Key()
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			first = append(first, i)
		}
	}
	stored, err := s.storedKeys(ctx, events, first)
	if err != nil {
		return res, stepLookup, err
	}
	fresh := make([]event.Event, 0, len(first)-len(stored))
	var freshPos []Position
	isNew := make([]bool, len(events))
	for _, i := range first {
		if stored[events[i].Key()] {
			continue
		}
		isNew[i] = true
		fresh = append(fresh, events[i])
		if pos != nil {
			freshPos = append(freshPos, pos[i])
		}
	}
	res.Stored = len(fresh)
	if len(fresh) < len(events) {
		if res.Duplicates, res.Conflicts, err = s.splitDuplicates(ctx, events, isNew, stored); err != nil {
			return res, stepLookup, err
		}
	}

	var eff store.Effects
	if evaluate != nil {
		if eff, err = evaluate(fresh); err != nil {
			return res, stepEvaluate, err
		}
	}
	// Nothing is written yet: a context cancelled meanwhile aborts cleanly.
	if err := ctx.Err(); err != nil {
		return res, stepEvaluate, err
	}

	token := ""
	if len(fresh) > 0 {
		token = batchToken(fresh, freshPos)
		if err := s.hook(stepEvents); err != nil {
			return res, stepEvents, err
		}
		if err := s.insertEvents(ctx, fresh, freshPos, token); err != nil {
			return res, stepEvents, err
		}
	}
	if err := s.hook(stepAlerts); err != nil {
		return res, stepAlerts, err
	}
	if res.Alerts, err = s.writeAlerts(ctx, eff.Alerts, token); err != nil {
		return res, stepAlerts, err
	}
	if err := s.hook(stepCommit); err != nil {
		return res, stepCommit, err
	}
	if err := s.commit(ctx, eff.State, token); err != nil {
		return res, stepCommit, err
	}
	return res, "", nil
}

// splitDuplicates tells the batch's duplicates from its conflicts
// (store.SplitDuplicates): the event kept under a stored key is read back
// from its committed batch, under any other key it is the batch's first
// occurrence. Batches without replays never get here.
func (s *Store) splitDuplicates(ctx context.Context, events []event.Event, isNew []bool, stored map[event.Key]bool) (int, []store.Conflict, error) {
	kept := make(map[event.Key]event.Event)
	keys := make([]event.Key, 0, len(stored))
	for k := range stored {
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		evs, err := s.EventsByKey(ctx, keys)
		if err != nil {
			return 0, nil, err
		}
		for _, e := range evs {
			kept[e.Key()] = e
		}
	}
	for i := range events {
		if k := events[i].Key(); isNew[i] && !stored[k] {
			if _, ok := kept[k]; !ok {
				kept[k] = events[i]
			}
		}
	}
	return store.SplitDuplicates(events, isNew, kept)
}

func (s *Store) hook(step string) error {
	if s.beforeStep == nil {
		return nil
	}
	return s.beforeStep(step)
}

// storedKeys returns which of events[idx…] are stored by a committed batch.
func (s *Store) storedKeys(ctx context.Context, events []event.Event, idx []int) (map[event.Key]bool, error) {
	stored := map[event.Key]bool{}
	if len(idx) == 0 {
		return stored, nil
	}
	batches := map[string][]event.Key{}
	for _, c := range chunks(len(idx), func(j int) int { e := &events[idx[j]]; return len(e.Org) + len(e.System) + len(e.ID) }) {
		lo, hi := c[0], c[1]
		keys := make([]string, 0, 3*(hi-lo))
		for _, i := range idx[lo:hi] {
			e := &events[i]
			keys = append(keys, e.Org, e.System, e.ID)
		}
		var p params
		rows, err := s.conn.Query(ctx, `SELECT org, system, id, batch FROM `+s.events+` WHERE (org, system, id) IN `+
			p.tuples(3, keys), p.list()...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k event.Key
			var batch string
			if err := rows.Scan(&k.Org, &k.System, &k.ID, &batch); err != nil {
				rows.Close()
				return nil, err
			}
			batches[batch] = append(batches[batch], k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if len(batches) == 0 {
		return stored, nil
	}
	names := make([]string, 0, len(batches))
	for b := range batches {
		names = append(names, b)
	}
	committed, err := s.committed(ctx, names)
	if err != nil {
		return nil, err
	}
	for b, keys := range batches {
		if committed[b] {
			for _, k := range keys {
				stored[k] = true
			}
		}
	}
	return stored, nil
}

// committed returns which of the batch tokens have a commit row.
func (s *Store) committed(ctx context.Context, tokens []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, c := range chunks(len(tokens), func(i int) int { return len(tokens[i]) }) {
		lo, hi := c[0], c[1]
		var p params
		rows, err := s.conn.Query(ctx, `SELECT DISTINCT key FROM `+s.db+`.checkpoint WHERE kind = 'commit' AND key IN `+p.strs(tokens[lo:hi]), p.list()...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) retention(org string) uint16 {
	if d, ok := s.retDays[org]; ok {
		return d
	}
	return s.defDays
}

// insertEvents writes the batch's new events in one block, deduplicated by
// token.
func (s *Store) insertEvents(ctx context.Context, fresh []event.Event, pos []Position, token string) error {
	var cols eventCols
	cols.reset()
	for i := range fresh {
		var p *Position
		if pos != nil {
			p = &pos[i]
		}
		cols.add(&fresh[i], p, token, s.retention(fresh[i].Org))
	}
	settings := clickhouse.Settings{"insert_deduplicate": 1, "insert_deduplication_token": token}
	if s.schema.Cluster != "" {
		// Through the Distributed table: insert into the shards before
		// returning, so that a returned Apply is durable.
		settings["distributed_foreground_insert"] = 1
	}
	ictx := clickhouse.Context(ctx, clickhouse.WithSettings(settings))
	b, err := s.conn.PrepareBatch(ictx, `INSERT INTO `+s.events+` (`+eventColumnList+`)`)
	if err != nil {
		return err
	}
	if err := cols.appendTo(func(i int, v any) error { return b.Column(i).Append(v) }); err != nil {
		_ = b.Abort()
		return err
	}
	if err := b.Send(); err != nil {
		return err
	}
	s.m.rows.WithLabelValues("events").Add(float64(len(fresh)))
	return nil
}

type storedAlert struct {
	version uint64
	body    string
	batch   string
}

// writeAlerts writes a new version of each alert whose content changed and
// returns how many it wrote. An alert whose latest version was written by a
// failed attempt of this same batch counts as written.
func (s *Store) writeAlerts(ctx context.Context, alerts []alert.Alert, token string) (int, error) {
	if len(alerts) == 0 {
		return 0, nil
	}
	ids := make([]string, 0, len(alerts))
	for i := range alerts {
		if alerts[i].ID == "" {
			return 0, errors.New("alert without id")
		}
		ids = append(ids, alerts[i].ID)
	}
	latest := map[string]storedAlert{}
	for _, c := range chunks(len(ids), func(i int) int { return len(ids[i]) }) {
		lo, hi := c[0], c[1]
		var p params
		rows, err := s.conn.Query(ctx, `SELECT id, max(version), argMax(body, version), argMax(batch, version) FROM `+s.db+
			`.alerts WHERE id IN `+p.strs(ids[lo:hi])+` GROUP BY id`, p.list()...)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			var id string
			var a storedAlert
			if err := rows.Scan(&id, &a.version, &a.body, &a.batch); err != nil {
				rows.Close()
				return 0, err
			}
			latest[id] = a
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
	}
	b, err := s.conn.PrepareBatch(ctx, `INSERT INTO `+s.db+`.alerts (id, org, check_name, pattern, severity, dpia, actor, subject, first_seen, last_seen, version, change_seq, updated_at, batch, reference_id, body)`)
	if err != nil {
		return 0, err
	}
	written, rows := 0, 0
	now := time.Now()
	for i := range alerts {
		a := &alerts[i]
		body, err := storedjson.Marshal(a)
		if err != nil {
			_ = b.Abort()
			return 0, fmt.Errorf("encode alert: %w", err)
		}
		prev, ok := latest[a.ID]
		if ok && prev.body == string(body) {
			if token != "" && prev.batch == token {
				written++
			}
			continue
		}
		next := storedAlert{version: prev.version + 1, body: string(body), batch: token}
		if err := b.Append(a.ID, a.Org, a.Check, a.Pattern, string(a.Severity), a.DPIA, a.ActorID, a.SubjectID,
			clampTime(a.FirstSeen), clampTime(a.LastSeen), next.version, s.nextSeq(), now, token, a.ReferenceID, next.body); err != nil {
			_ = b.Abort()
			return 0, err
		}
		latest[a.ID] = next
		written++
		rows++
	}
	if rows == 0 {
		_ = b.Abort()
		return written, nil
	}
	if err := b.Send(); err != nil {
		return 0, err
	}
	s.m.rows.WithLabelValues("alerts").Add(float64(rows))
	return written, nil
}

// commit writes the check state and, when the batch stored events, its
// commit row, in one insert: the batch's commit point.
func (s *Store) commit(ctx context.Context, state []store.StateEntry, token string) error {
	if len(state) == 0 && token == "" {
		return nil
	}
	// The last entry for a key wins, as if they were applied in order.
	last := make(map[string]int, len(state))
	for i, e := range state {
		last[e.Key] = i
	}
	b, err := s.conn.PrepareBatch(ctx, `INSERT INTO `+s.db+`.checkpoint (kind, key, value, deleted, seq)`)
	if err != nil {
		return err
	}
	seq := s.nextSeq()
	for i, e := range state {
		if last[e.Key] != i {
			continue
		}
		if err := b.Append("state", e.Key, string(e.Value), e.Value == nil, seq); err != nil {
			_ = b.Abort()
			return err
		}
	}
	if token != "" {
		if err := b.Append("commit", token, "", false, seq); err != nil {
			_ = b.Abort()
			return err
		}
	}
	n := b.Rows()
	if err := b.Send(); err != nil {
		return err
	}
	s.m.rows.WithLabelValues("checkpoint").Add(float64(n))
	return nil
}
