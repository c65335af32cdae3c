package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// SideBySideOptions configure a run of one benchmark against two binaries.
type SideBySideOptions struct {
	// Old and New are the payd binaries compared.
	Old, New string
	// Args follow "bench" on each binary's command line: the scenario and
	// its flags ("budget", "--n", "3000").
	Args []string
	// Rounds is how many times each binary runs, alternately (old, new,
	// old, new…), so both see the same machine; 1 when zero. Each figure is
	// the median over the rounds.
	Rounds int
	// Stderr receives the binaries' stderr and their progress; nil discards.
	Stderr io.Writer
	// Serve and Driver: when Serve is set, Driver (a payd binary) runs the
	// scenario with --serve BIN for each side, so only the payd serve
	// measured is the old or new one and the old binary need not have the
	// scenario.
	Serve  bool
	Driver string
}

// Comparison is one figure of the benchmark on both binaries.
type Comparison struct {
	// Label names the figure as the benchmark prints it
	// ("median use of the limit", "orders=10000 due=1000: claim").
	Label string
	// Old and New are the figure's medians over the rounds; durations in
	// milliseconds.
	Old, New float64
	// Unit is "ms" for durations, "MB" for memory, "" for plain numbers.
	Unit string
}

// Ratio is New/Old: above 1, the new binary's figure is larger.
func (c Comparison) Ratio() float64 { return c.New / c.Old }

// SideBySide runs the benchmark o.Args on both binaries and compares the
// figures of their result lines (the medians, and scale's one line per
// table size). Both binaries must print the same figures.
func SideBySide(ctx context.Context, o SideBySideOptions) ([]Comparison, error) {
	if o.Rounds <= 0 {
		o.Rounds = 1
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	var olds, news [][]figure
	for round := 1; round <= o.Rounds; round++ {
		for _, side := range []struct {
			name, bin string
			into      *[][]figure
		}{{"old", o.Old, &olds}, {"new", o.New, &news}} {
			fmt.Fprintf(o.Stderr, "side by side: round %d of %d, %s binary %s\n", round, o.Rounds, side.name, side.bin)
			bin, args := side.bin, o.Args
			if o.Serve {
				bin, args = o.Driver, append([]string{o.Args[0], "--serve", side.bin}, o.Args[1:]...)
			}
			figs, err := runBench(ctx, bin, args, o.Stderr)
			if err != nil {
				return nil, fmt.Errorf("%s binary: %w", side.name, err)
			}
			*side.into = append(*side.into, figs)
		}
	}
	return compare(olds, news)
}

// runBench runs "bin bench args..." and returns the figures it printed.
func runBench(ctx context.Context, bin string, args []string, stderr io.Writer) ([]figure, error) {
	var out bytes.Buffer
	c := exec.CommandContext(ctx, bin, append([]string{"bench"}, args...)...)
	c.Stdout, c.Stderr = &out, stderr
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("%s bench %s: %w", bin, strings.Join(args, " "), err)
	}
	figs := parseFigures(out.String())
	if len(figs) == 0 {
		return nil, fmt.Errorf("%s bench %s printed no result line:\n%s", bin, strings.Join(args, " "), out.String())
	}
	return figs, nil
}

// compare pairs the figures of every round by label and takes medians.
func compare(olds, news [][]figure) ([]Comparison, error) {
	var out []Comparison
	for i, f := range olds[0] {
		c := Comparison{Label: f.label, Unit: f.unit}
		for _, side := range []struct {
			rounds [][]figure
			into   *float64
		}{{olds, &c.Old}, {news, &c.New}} {
			var vs []float64
			for _, figs := range side.rounds {
				if i >= len(figs) || figs[i].label != f.label {
					return nil, fmt.Errorf("the binaries print different figures: %q is missing from a run", f.label)
				}
				vs = append(vs, figs[i].value)
			}
			*side.into = Median(vs)
		}
		out = append(out, c)
	}
	return out, nil
}

// PrintComparisons writes the comparisons as a Markdown table.
func PrintComparisons(w io.Writer, cs []Comparison) {
	fmt.Fprintln(w, "| figure | old | new | new/old |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, c := range cs {
		ratio := "-"
		if c.Old != 0 {
			ratio = fmt.Sprintf("%.3f", c.Ratio())
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.Label, value(c.Old, c.Unit), value(c.New, c.Unit), ratio)
	}
}

// value prints v to at most three decimals (a median of two is a sum
// divided: 4.800000000000001 prints as 4.8).
func value(v float64, unit string) string {
	s := strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
	if unit == "" {
		return s
	}
	return s + " " + unit
}

// figure is one number of a result line.
type figure struct {
	label string
	value float64
	unit  string
}

var (
	parenthesized = regexp.MustCompile(`\s*\([^()]*\)`)
	// setting is a clause's closing "after 8s": how long scale let payd
	// serve run, a flag's value, not a figure.
	setting = regexp.MustCompile(`\s+after \S+$`)
	// number is a figure standing on its own: "12.0ms", "0.987", "31.0"
	// (not the 50 of "p50").
	number       = regexp.MustCompile(`(?:^|\s)((?:\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h))+|\d+(?:\.\d+)?)`)
	durationText = regexp.MustCompile(`^(?:\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h))+$`)
)

// parseFigures reads the result lines of a benchmark's output: those
// starting with "median" and scale's "orders=" lines. Remarks in
// parentheses and closing "after <duration>" settings are left out; a
// line's text before ": " names its figures when it holds them.
func parseFigures(out string) []figure {
	var figs []figure
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "median") && !strings.HasPrefix(line, "orders=") {
			continue
		}
		line = parenthesized.ReplaceAllString(line, "")
		key, rest, ok := strings.Cut(line, ": ")
		if !ok {
			key, rest = "", line
		}
		for _, clause := range strings.Split(rest, ", ") {
			figs = append(figs, clauseFigures(key, setting.ReplaceAllString(clause, ""))...)
		}
	}
	return figs
}

// clauseFigures reads the numbers of one clause ("payd serve RSS 31.0 MB
// after 8s"), each labelled by the words before it.
func clauseFigures(key, clause string) []figure {
	var figs []figure
	at := 0
	for _, m := range number.FindAllStringSubmatchIndex(clause, -1) {
		words := strings.TrimSpace(clause[at:m[2]])
		text := clause[m[2]:m[3]]
		at = m[3]
		f := figure{label: strings.TrimSpace(strings.TrimSuffix(key+": "+words, ": "))}
		if key == "" {
			f.label = words
		}
		if durationText.MatchString(text) {
			d, err := time.ParseDuration(strings.ReplaceAll(text, "us", "µs"))
			if err != nil {
				continue
			}
			f.value, f.unit = float64(d.Microseconds())/1000, "ms"
		} else {
			f.value, _ = strconv.ParseFloat(text, 64)
			if after := clause[at:]; strings.HasPrefix(after, " MB") {
				f.unit, at = "MB", at+3
			} else if strings.HasPrefix(after, "x") {
				at++
			}
		}
		figs = append(figs, f)
	}
	return figs
}
