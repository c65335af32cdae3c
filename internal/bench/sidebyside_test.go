package bench

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseFigures(t *testing.T) {
	tests := []struct {
		name, out string
		want      []figure
	}{
		{"budget", "payd bench budget: go1.26, linux/amd64, 2 CPUs\nrun 1: N=3000 blocked=false L=300/s per API: wall 10.2s, ideal 10s, use 0.981 of the limit, 1001s 0, calls [ settle=3000 ]\nmedian use of the limit: 0.981 (3 runs)\n",
			[]figure{{"median use of the limit", 0.981, ""}}},
		{"hint", "median p50 12.5ms, median p99 30.0ms (3 runs)\n",
			[]figure{{"median p50", 12.5, "ms"}, {"median p99", 30, "ms"}}},
		{"script", "median speed-up: 3.1x (3 runs)\n", []figure{{"median speed-up", 3.1, ""}}},
		{"intake", "median: 5120 callbacks/s (3 runs)\n", []figure{{"median", 5120, ""}}},
		{"scale", "payd bench scale: go1.26\norders=10000 due=1000 (seeded in 1.204s): claim 6.2ms, no-op reconcile pass 32.2ms, payd plan 133.0ms (process, median of 5), payd serve RSS 31.4 MB (peak 31.4 MB) after 1m2s\n",
			[]figure{
				{"orders=10000 due=1000: claim", 6.2, "ms"},
				{"orders=10000 due=1000: no-op reconcile pass", 32.2, "ms"},
				{"orders=10000 due=1000: payd plan", 133, "ms"},
				{"orders=10000 due=1000: payd serve RSS", 31.4, "MB"},
			}},
		{"no result line", "run 1: use 0.5 of the limit\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseFigures(tt.out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseFigures =\n %v\nwant\n %v", got, tt.want)
			}
		})
	}
}

// fakePayd writes a script that logs its name and arguments to log and
// prints the scale line with the given claim and pass times.
func fakePayd(t *testing.T, dir, name, log, claim, pass string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	script := "#!/bin/sh\necho \"" + name + " $*\" >> " + log + "\n" +
		"echo 'payd bench scale: fake'\n" +
		"echo 'orders=10 due=5 (seeded in 1ms): claim " + claim + ", no-op reconcile pass " + pass + "'\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSideBySide: the binaries run alternately with the same arguments,
// each figure is the median of its rounds, and the ratio is new/old.
func TestSideBySide(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "calls.log")
	old := fakePayd(t, dir, "old", log, "10.0ms", "40.0ms")
	fresh := fakePayd(t, dir, "new", log, "5.0ms", "40.0ms")
	cs, err := SideBySide(context.Background(), SideBySideOptions{Old: old, New: fresh, Args: []string{"scale", "--orders", "10"}, Rounds: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []Comparison{
		{Label: "orders=10 due=5: claim", Old: 10, New: 5, Unit: "ms"},
		{Label: "orders=10 due=5: no-op reconcile pass", Old: 40, New: 40, Unit: "ms"},
	}
	if !reflect.DeepEqual(cs, want) {
		t.Fatalf("SideBySide = %+v, want %+v", cs, want)
	}
	if cs[0].Ratio() != 0.5 || cs[1].Ratio() != 1 {
		t.Errorf("ratios %v %v, want 0.5 and 1", cs[0].Ratio(), cs[1].Ratio())
	}
	calls, _ := os.ReadFile(log)
	wantCalls := strings.Repeat("old bench scale --orders 10\nnew bench scale --orders 10\n", 2)
	if string(calls) != wantCalls {
		t.Errorf("calls:\n%s\nwant, alternating:\n%s", calls, wantCalls)
	}
	var out strings.Builder
	PrintComparisons(&out, cs)
	if !strings.Contains(out.String(), "| orders=10 due=5: claim | 10 ms | 5 ms | 0.500 |") {
		t.Errorf("table:\n%s", out.String())
	}

	t.Run("a binary that fails", func(t *testing.T) {
		_, err := SideBySide(context.Background(), SideBySideOptions{Old: old, New: filepath.Join(dir, "missing"), Args: []string{"scale"}})
		if err == nil || !strings.Contains(err.Error(), "new binary") {
			t.Errorf("SideBySide with a missing new binary: %v", err)
		}
	})
}

// TestValue: a figure prints to at most three decimals, with its unit.
func TestValue(t *testing.T) {
	for v, want := range map[float64]string{4.800000000000001: "4.8 ms", 125.30000000000001: "125.3 ms", 0.9965: "0.997 ms", 3: "3 ms"} {
		if got := value(v, "ms"); got != want {
			t.Errorf("value(%v) = %q, want %q", v, got, want)
		}
	}
	if got := value(0.5, ""); got != "0.5" {
		t.Errorf("value(0.5, \"\") = %q", got)
	}
}
