package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func ptr(v int64) *int64 { return &v }

func TestSetAliasCompareAndSwap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		for range 3 {
			mustRegister(t, r, Version{Model: "m", BundleURI: "b"})
		}
		type op int
		const (
			set op = iota
			remove
		)
		steps := []struct {
			name     string
			op       op
			move     AliasMove
			is       error
			errText  string
			wantFrom int64
			wantTo   int64
			wantNoop bool
			after    int64 // alias version after the step, 0 = unset
		}{
			{name: "expect existing alias but none", op: set, move: AliasMove{To: 1, From: ptr(2)}, is: ErrConflict, errText: "expected version 2, actual none", after: 0},
			{name: "create expecting none", op: set, move: AliasMove{To: 1, From: ptr(0)}, wantFrom: 0, wantTo: 1, after: 1},
			{name: "create again expecting none", op: set, move: AliasMove{To: 2, From: ptr(0)}, is: ErrConflict, errText: "expected none, actual version 1", after: 1},
			{name: "move with right expectation", op: set, move: AliasMove{To: 2, From: ptr(1)}, wantFrom: 1, wantTo: 2, after: 2},
			{name: "stale expectation", op: set, move: AliasMove{To: 3, From: ptr(1)}, is: ErrConflict, errText: "expected version 1, actual version 2", after: 2},
			{name: "same target is a no-op", op: set, move: AliasMove{To: 2, From: ptr(2)}, wantFrom: 2, wantTo: 2, wantNoop: true, after: 2},
			{name: "same target with stale expectation conflicts", op: set, move: AliasMove{To: 2, From: ptr(1)}, is: ErrConflict, after: 2},
			{name: "unchecked move", op: set, move: AliasMove{To: 3}, wantFrom: 2, wantTo: 3, after: 3},
			{name: "missing target version", op: set, move: AliasMove{To: 4}, is: ErrNotFound, after: 3},
			{name: "zero target version", op: set, move: AliasMove{To: 0}, is: ErrInvalid, after: 3},
			{name: "remove with stale expectation", op: remove, move: AliasMove{From: ptr(2)}, is: ErrConflict, after: 3},
			{name: "remove", op: remove, move: AliasMove{From: ptr(3)}, wantFrom: 3, wantTo: 0, after: 0},
			{name: "remove again is a no-op", op: remove, move: AliasMove{}, wantNoop: true, after: 0},
			{name: "remove expecting none is a no-op", op: remove, move: AliasMove{From: ptr(0)}, wantNoop: true, after: 0},
		}
		for _, s := range steps {
			m := s.move
			m.Model, m.Alias = "m", "production"
			var ev AliasEvent
			var err error
			if s.op == set {
				ev, err = r.SetAlias(ctx, m)
			} else {
				ev, err = r.RemoveAlias(ctx, m)
			}
			if s.is != nil {
				if !errors.Is(err, s.is) {
					t.Errorf("%s: error = %v, want %v", s.name, err, s.is)
				} else if !strings.Contains(err.Error(), s.errText) {
					t.Errorf("%s: error %q does not say %q", s.name, err, s.errText)
				}
			} else if err != nil {
				t.Errorf("%s: %v", s.name, err)
			} else {
				if ev.From != s.wantFrom || ev.To != s.wantTo || ev.Noop != s.wantNoop {
					t.Errorf("%s: event from %d to %d noop %v, want %d %d %v", s.name, ev.From, ev.To, ev.Noop, s.wantFrom, s.wantTo, s.wantNoop)
				}
				if (ev.ID == 0) != s.wantNoop {
					t.Errorf("%s: event ID %d with noop %v", s.name, ev.ID, ev.Noop)
				}
			}
			got, ok, err := r.Alias(ctx, "m", "production")
			if err != nil {
				t.Fatalf("%s: Alias: %v", s.name, err)
			}
			if got != s.after || ok != (s.after != 0) {
				t.Errorf("%s: alias now %d (%v), want %d", s.name, got, ok, s.after)
			}
		}
		hist, err := r.AliasHistory(ctx, "m", "production")
		if err != nil {
			t.Fatal(err)
		}
		var moves [][2]int64
		for _, ev := range hist {
			moves = append(moves, [2]int64{ev.From, ev.To})
		}
		if want := [][2]int64{{0, 1}, {1, 2}, {2, 3}, {3, 0}}; !reflect.DeepEqual(moves, want) {
			t.Errorf("history = %v, want %v (failed and no-op moves not recorded)", moves, want)
		}
	})
}

func TestAliasErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		mustRegister(t, r, Version{Model: "m", BundleURI: "b"})
		tests := []struct {
			name string
			call func() error
			is   error
		}{
			{"set on unknown model", func() error {
				_, err := r.SetAlias(ctx, AliasMove{Model: "x", Alias: "prod", To: 1})
				return err
			}, ErrNotFound},
			{"bad alias name", func() error {
				_, err := r.SetAlias(ctx, AliasMove{Model: "m", Alias: "Prod", To: 1})
				return err
			}, ErrInvalid},
			{"alias with @", func() error {
				_, err := r.SetAlias(ctx, AliasMove{Model: "m", Alias: "a@b", To: 1})
				return err
			}, ErrInvalid},
			{"remove on unknown model", func() error {
				_, err := r.RemoveAlias(ctx, AliasMove{Model: "x", Alias: "prod"})
				return err
			}, ErrNotFound},
			{"alias of unknown model", func() error {
				_, _, err := r.Alias(ctx, "x", "prod")
				return err
			}, ErrNotFound},
			{"history of unknown model", func() error {
				_, err := r.AliasHistory(ctx, "x", "")
				return err
			}, ErrNotFound},
			{"history with bad alias", func() error {
				_, err := r.AliasHistory(ctx, "m", "B")
				return err
			}, ErrInvalid},
			{"alias at of unknown model", func() error {
				_, _, err := r.AliasAt(ctx, "x", "prod", time.Now())
				return err
			}, ErrNotFound},
		}
		for _, tt := range tests {
			if err := tt.call(); !errors.Is(err, tt.is) {
				t.Errorf("%s: error = %v, want %v", tt.name, err, tt.is)
			}
		}
	})
}

func TestAliasHistoryAndAliasAt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r, _ := b.open(t)
		t0 := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
		r.now = fakeClock(t0, time.Hour)
		for range 3 {
			mustRegister(t, r, Version{Model: "m", BundleURI: "b"}) // t0, t0+1h, t0+2h
		}
		moves := []struct {
			remove bool
			alias  string
			to     int64
			at     time.Time
		}{
			{false, "production", 1, t0.Add(3 * time.Hour)},
			{false, "staging", 2, t0.Add(4 * time.Hour)},
			{false, "production", 2, t0.Add(5 * time.Hour)},
			{true, "production", 0, t0.Add(6 * time.Hour)},
			{false, "production", 3, t0.Add(7 * time.Hour)},
		}
		for i, mv := range moves {
			m := AliasMove{Model: "m", Alias: mv.alias, To: mv.to, Actor: "bob", Reason: "step", RunID: "run"}
			var ev AliasEvent
			var err error
			if mv.remove {
				ev, err = r.RemoveAlias(ctx, m)
			} else {
				ev, err = r.SetAlias(ctx, m)
			}
			if err != nil {
				t.Fatalf("move %d: %v", i, err)
			}
			if !ev.At.Equal(mv.at) || ev.ID != int64(i+1) {
				t.Fatalf("move %d: event %+v, want ID %d at %v", i, ev, i+1, mv.at)
			}
		}
		// A no-op reports when the alias last changed and records nothing.
		ev, err := r.SetAlias(ctx, AliasMove{Model: "m", Alias: "production", To: 3})
		if err != nil || !ev.Noop || !ev.At.Equal(t0.Add(7*time.Hour)) {
			t.Errorf("no-op SetAlias = %+v, %v", ev, err)
		}

		all, err := r.AliasHistory(ctx, "m", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(moves) {
			t.Fatalf("history has %d events, want %d", len(all), len(moves))
		}
		want0 := AliasEvent{ID: 1, Model: "m", Alias: "production", From: 0, To: 1, Actor: "bob", Reason: "step", RunID: "run", At: t0.Add(3 * time.Hour)}
		if all[0] != want0 {
			t.Errorf("first event = %+v, want %+v", all[0], want0)
		}
		for i := 1; i < len(all); i++ {
			if all[i].ID <= all[i-1].ID {
				t.Errorf("history not oldest first: %v", all)
			}
		}
		prod, err := r.AliasHistory(ctx, "m", "production")
		if err != nil {
			t.Fatal(err)
		}
		var prodMoves [][2]int64
		for _, ev := range prod {
			prodMoves = append(prodMoves, [2]int64{ev.From, ev.To})
		}
		if want := [][2]int64{{0, 1}, {1, 2}, {2, 0}, {0, 3}}; !reflect.DeepEqual(prodMoves, want) {
			t.Errorf("production history = %v, want %v", prodMoves, want)
		}

		tests := []struct {
			alias  string
			at     time.Time
			want   int64
			wantOK bool
		}{
			{"production", t0, 0, false},
			{"production", t0.Add(3*time.Hour - time.Nanosecond), 0, false},
			{"production", t0.Add(3 * time.Hour), 1, true},
			{"production", t0.Add(4*time.Hour + 30*time.Minute), 1, true},
			{"production", t0.Add(5 * time.Hour), 2, true},
			{"production", t0.Add(6*time.Hour + time.Minute), 0, false},
			{"production", t0.Add(7 * time.Hour), 3, true},
			{"production", t0.Add(1000 * time.Hour), 3, true},
			{"production", t0.Add(5 * time.Hour).In(time.FixedZone("PST", -8*3600)), 2, true},
			{"staging", t0.Add(5 * time.Hour), 2, true},
			{"canary", t0.Add(5 * time.Hour), 0, false},
		}
		for _, tt := range tests {
			got, ok, err := r.AliasAt(ctx, "m", tt.alias, tt.at)
			if err != nil {
				t.Fatalf("AliasAt(%s, %v): %v", tt.alias, tt.at, err)
			}
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("AliasAt(%s, %v) = %d, %v, want %d, %v", tt.alias, tt.at, got, ok, tt.want, tt.wantOK)
			}
		}
	})
}

func TestConcurrentCompareAndSwapTwoHandles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		r1, path := b.open(t)
		r2, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer r2.Close()
		for range 3 {
			mustRegister(t, r1, Version{Model: "m", BundleURI: "b"})
		}
		// Every goroutine tries to create the alias expecting it absent: exactly
		// one wins, the others see ErrConflict (never a busy error).
		const n = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, conflicts := 0, 0
		var other []error
		for i := range n {
			r := r1
			if i%2 == 1 {
				r = r2
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := r.SetAlias(ctx, AliasMove{Model: "m", Alias: "production", To: int64(i%3 + 1), From: ptr(0)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, ErrConflict):
					conflicts++
				default:
					other = append(other, err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || conflicts != n-1 || len(other) != 0 {
			t.Errorf("wins %d conflicts %d other errors %v; want 1, %d, none", wins, conflicts, other, n-1)
		}
		hist, err := r2.AliasHistory(ctx, "m", "production")
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 1 {
			t.Errorf("history has %d events, want 1", len(hist))
		}
	})
}

// aliasChildEnv turns the test binary into a promoting child process for
// TestMultiProcessAliasMoves: its value is "target|version".
const aliasChildEnv = "KILN_REGISTRY_TEST_ALIAS_CHILD"

// TestMultiProcessAliasMoves: three processes each move production of one
// model many times (to the next of its three versions), by compare-and-swap
// on the version they read (retrying on conflict), as the promote workflow
// does.
// No move is lost: the history holds every move, and each move starts where
// the previous one ended.
func TestMultiProcessAliasMoves(t *testing.T) {
	const perProcess = 20
	promote := func(target string) error {
		ctx := context.Background()
		r, err := Open(ctx, target)
		if err != nil {
			return err
		}
		defer r.Close()
		for moved := 0; moved < perProcess; {
			cur, _, err := r.Alias(ctx, "m", "production")
			if err != nil {
				return err
			}
			to := cur%3 + 1
			_, err = r.SetAlias(ctx, AliasMove{Model: "m", Alias: "production", From: &cur, To: to,
				Actor: fmt.Sprintf("pid-%d", os.Getpid()), Reason: "promote"})
			switch {
			case err == nil:
				moved++
			case errors.Is(err, ErrConflict):
				// Someone moved it since we read it: read again.
			default:
				return err
			}
		}
		return nil
	}
	if v := os.Getenv(aliasChildEnv); v != "" {
		if err := promote(v); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		return
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		r, target := b.open(t)
		for i := range 3 {
			mustRegister(t, r, Version{Model: "m", BundleURI: fmt.Sprintf("b%d", i+1)})
		}
		const children = 2
		cmds := make([]*exec.Cmd, children)
		outs := make([]*strings.Builder, children)
		for i := range cmds {
			cmds[i] = exec.Command(os.Args[0], "-test.run=^TestMultiProcessAliasMoves$", "-test.count=1")
			cmds[i].Env = append(os.Environ(), aliasChildEnv+"="+target)
			outs[i] = &strings.Builder{}
			cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
			if err := cmds[i].Start(); err != nil {
				t.Fatal(err)
			}
		}
		if err := promote(target); err != nil {
			t.Errorf("parent: %v", err)
		}
		for i, c := range cmds {
			if err := c.Wait(); err != nil {
				t.Errorf("child %d: %v\n%s", i, err, outs[i])
			}
		}
		h, err := r.AliasHistory(context.Background(), "m", "production")
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 3*perProcess {
			t.Errorf("%d moves in the history, want %d", len(h), 3*perProcess)
		}
		actors := map[string]int{}
		var prev int64
		for i, e := range h {
			if e.From != prev {
				t.Fatalf("move %d goes %d → %d but the alias was at %d: a move was lost", i, e.From, e.To, prev)
			}
			prev = e.To
			actors[e.Actor]++
		}
		if len(actors) != 3 {
			t.Errorf("moves by %d processes, want 3: %v", len(actors), actors)
		}
		if cur, _, _ := r.Alias(context.Background(), "m", "production"); cur != prev {
			t.Errorf("production = %d, history ends at %d", cur, prev)
		}
	})
}
