package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func sha(c byte) string { return strings.Repeat(string(c), 64) }

func TestLabelBatches(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		mustRegister(t, r, Version{Model: "churn", BundleURI: "file:///b/1"})
		mustRegister(t, r, Version{Model: "fraud", BundleURI: "file:///b/2"})
		// Every AddLabelBatch reads the clock once: the n-th call (from 0)
		// pushes at n o'clock.
		r.now = fakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Hour)
		cols := LabelColumns{ID: "id", Label: "label", Time: "time"}

		tests := []struct {
			name    string
			in      LabelBatch
			created bool
			wantID  int64
			wantErr error
		}{
			{"first", LabelBatch{Model: "churn", SHA256: sha('a'), URI: "file:///l/a", Rows: 10, Rejected: 2, Source: "a.csv", SourceSHA256: sha('1'), Columns: cols, PushedBy: "ada"}, true, 1, nil},
			{"same content", LabelBatch{Model: "churn", SHA256: sha('a'), URI: "file:///l/a", Rows: 10, Source: "a2.csv", SourceSHA256: sha('2'), Columns: cols}, false, 1, nil},
			{"same source, same columns", LabelBatch{Model: "churn", SHA256: sha('b'), URI: "file:///l/b", Rows: 10, Source: "a.csv", SourceSHA256: sha('1'), Columns: cols}, false, 1, nil},
			{"same source, other label column", LabelBatch{Model: "churn", SHA256: sha('c'), URI: "file:///l/c", Rows: 10, Source: "a.csv", SourceSHA256: sha('1'), Columns: LabelColumns{ID: "id", Label: "y", Time: "time"}}, true, 2, nil},
			{"other model, same content", LabelBatch{Model: "fraud", SHA256: sha('a'), URI: "file:///l/fa", Rows: 10, Source: "a.csv", SourceSHA256: sha('1'), Columns: cols}, true, 3, nil},
			{"no source hash", LabelBatch{Model: "churn", SHA256: sha('d'), URI: "file:///l/d", Rows: 1, Source: "x", Columns: cols}, true, 4, nil},
			{"unknown model", LabelBatch{Model: "nope", SHA256: sha('e'), URI: "file:///l/e"}, false, 0, ErrNotFound},
			{"bad model name", LabelBatch{Model: "No!", SHA256: sha('e'), URI: "file:///l/e"}, false, 0, ErrInvalid},
			{"bad sha", LabelBatch{Model: "churn", SHA256: "abc", URI: "file:///l/e"}, false, 0, ErrInvalid},
			{"upper-case sha", LabelBatch{Model: "churn", SHA256: strings.Repeat("A", 64), URI: "file:///l/e"}, false, 0, ErrInvalid},
			{"no uri", LabelBatch{Model: "churn", SHA256: sha('e')}, false, 0, ErrInvalid},
			{"negative rows", LabelBatch{Model: "churn", SHA256: sha('e'), URI: "u", Rows: -1}, false, 0, ErrInvalid},
		}
		for _, tt := range tests {
			got, created, err := r.AddLabelBatch(ctx, tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
				}
				continue
			}
			if err != nil || created != tt.created || got.ID != tt.wantID {
				t.Errorf("%s: got id %d, created %v, %v; want id %d, created %v", tt.name, got.ID, created, err, tt.wantID, tt.created)
			}
		}

		first, err := r.LabelBatch(ctx, "churn", sha('a'))
		if err != nil {
			t.Fatal(err)
		}
		want := LabelBatch{ID: 1, Model: "churn", SHA256: sha('a'), URI: "file:///l/a", Rows: 10, Rejected: 2, Source: "a.csv",
			SourceSHA256: sha('1'), Columns: cols, PushedBy: "ada", PushedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
		if fmt.Sprint(first) != fmt.Sprint(want) || !first.PushedAt.Equal(want.PushedAt) {
			t.Errorf("LabelBatch = %+v\nwant %+v", first, want)
		}
		if _, err := r.LabelBatch(ctx, "churn", sha('f')); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing batch: err = %v, want ErrNotFound", err)
		}
		if got, ok, err := r.LabelBatchBySource(ctx, "churn", sha('1'), cols); err != nil || !ok || got.ID != 1 {
			t.Errorf("LabelBatchBySource = %+v, %v, %v", got, ok, err)
		}
		if _, ok, err := r.LabelBatchBySource(ctx, "churn", sha('9'), cols); err != nil || ok {
			t.Errorf("LabelBatchBySource(unknown) = %v, %v", ok, err)
		}

		all, err := r.LabelBatches(ctx, "churn", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, b := range all {
			ids = append(ids, b.ID)
		}
		if fmt.Sprint(ids) != "[1 2 4]" {
			t.Errorf("LabelBatches(churn) ids = %v, want [1 2 4]", ids)
		}
		// Batch 2 was pushed at 03:00 (the fourth call), batch 4 at 05:00.
		recent, err := r.LabelBatches(ctx, "churn", time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
		if err != nil || len(recent) != 2 || recent[0].ID != 2 || !recent[0].PushedAt.Equal(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)) {
			t.Errorf("LabelBatches since 01:00 = %+v, %v", recent, err)
		}
		if none, err := r.LabelBatches(ctx, "churn", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || len(none) != 0 {
			t.Errorf("LabelBatches since 2027 = %+v, %v", none, err)
		}
		if _, err := r.LabelBatches(ctx, "nope", time.Time{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("LabelBatches(unknown model): err = %v, want ErrNotFound", err)
		}
	})
}

// TestLabelBatchConcurrentPush: the same batch pushed by several writers at
// once is recorded once, and every writer gets that one batch.
func TestLabelBatchConcurrentPush(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, target := b.open(t)
		mustRegister(t, r, Version{Model: "churn", BundleURI: "file:///b/1"})
		const writers = 6
		var wg sync.WaitGroup
		ids := make([]int64, writers)
		created := make([]bool, writers)
		errs := make([]error, writers)
		for i := 0; i < writers; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				// Separate handles, as separate processes would have.
				rr, err := Open(ctx, target)
				if err != nil {
					errs[i] = err
					return
				}
				defer rr.Close()
				// Different normalised content (times from the push), same source.
				got, c, err := rr.AddLabelBatch(ctx, LabelBatch{Model: "churn", SHA256: sha("0123456789ab"[i]), URI: "file:///l",
					Rows: 3, Source: "a.csv", SourceSHA256: sha('7'), Columns: LabelColumns{ID: "id", Label: "label", Time: "time"}})
				ids[i], created[i], errs[i] = got.ID, c, err
			}(i)
		}
		wg.Wait()
		n := 0
		for i := range ids {
			if errs[i] != nil {
				t.Fatalf("writer %d: %v", i, errs[i])
			}
			if created[i] {
				n++
			}
			if ids[i] != ids[0] {
				t.Errorf("writer %d got batch %d, writer 0 got %d", i, ids[i], ids[0])
			}
		}
		if n != 1 {
			t.Errorf("%d writers created the batch, want 1", n)
		}
		all, err := r.LabelBatches(ctx, "churn", time.Time{})
		if err != nil || len(all) != 1 {
			t.Errorf("batches = %+v, %v; want one", all, err)
		}
	})
}

// TestLabelBatchInsertRace: a batch committed by another writer after
// AddLabelBatch looked for it (PostgreSQL: while it waits for the counter
// row) makes the insert a no-op, and AddLabelBatch returns that batch.
func TestLabelBatchInsertRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		mustRegister(t, r, Version{Model: "churn", BundleURI: "file:///b/1"})
		other, err := r.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Rollback()
		// Hold the counter row (PostgreSQL) or the write lock (SQLite).
		if _, err := other.ExecContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'label_batches'`); err != nil {
			t.Fatal(err)
		}
		type result struct {
			b       LabelBatch
			created bool
			err     error
		}
		done := make(chan result, 1)
		go func() {
			got, created, err := r.AddLabelBatch(ctx, LabelBatch{Model: "churn", SHA256: sha('a'), URI: "file:///mine", Rows: 1})
			done <- result{got, created, err}
		}()
		time.Sleep(300 * time.Millisecond)
		if _, err := other.ExecContext(ctx, `INSERT INTO label_batches (`+labelBatchColumns+`)
VALUES (99, 'churn', $1, 'file:///theirs', 2, 0, 's', '', 'id', 'label', 'time', 'bob', $2)`, sha('a'), formatTime(time.Now())); err != nil {
			t.Fatal(err)
		}
		if err := other.Commit(); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if res.err != nil || res.created || res.b.ID != 99 || res.b.URI != "file:///theirs" {
			t.Errorf("AddLabelBatch = %+v, created %v, %v; want the other writer's batch 99", res.b, res.created, res.err)
		}
	})
}
