package score

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText renders r as a table: one line per check, then one per pattern
// of it, indented. With details, the alerts and episodes to investigate
// follow the table.
func (r *Report) WriteText(w io.Writer, details bool) error {
	// The first column is padded here so that it reads left-aligned while
	// the numbers are right-aligned.
	width := len("check / pattern")
	for _, c := range r.Checks {
		width = max(width, len(c.Check))
		for _, p := range c.Patterns {
			width = max(width, 2+len(p.Pattern))
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tepisodes\tfound\tfound-as-other\tmissed\trecall\talerts\tTP\twrong-pattern\tFP\tprecision\t\n", width, "check / pattern")
	line := func(name string, c Counts) {
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t\n", width, name,
			c.Episodes, c.Found, c.FoundWrongPattern, c.Missed, ratio(c.Recall),
			c.Alerts, c.TP, c.WrongPattern, c.FP, ratio(c.Precision))
	}
	for _, c := range r.Checks {
		line(c.Check, c.Counts)
		for _, p := range c.Patterns {
			line("  "+p.Pattern, p.Counts)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	var b strings.Builder
	if len(r.NotRun) > 0 {
		names := make([]string, 0, len(r.NotRun))
		for c := range r.NotRun {
			names = append(names, c)
		}
		sort.Strings(names)
		for i, c := range names {
			names[i] = c + " (" + strconv.Itoa(r.NotRun[c]) + " episodes)"
		}
		b.WriteString("not run, not scored: " + strings.Join(names, ", ") + "\n")
	}
	if details {
		alerts := func(title string, l []AlertRef) {
			if len(l) == 0 {
				return
			}
			b.WriteString("\n" + title + ":\n")
			for _, a := range l {
				fmt.Fprintf(&b, "  %s %s/%s org=%s actor=%s %s..%s events=%d", a.ID, a.Check, a.Pattern, a.Org, a.ActorID,
					a.FirstSeen.UTC().Format(time.RFC3339), a.LastSeen.UTC().Format(time.RFC3339), a.EventCount)
				if len(a.Episodes) > 0 {
					b.WriteString(" touches " + strings.Join(a.Episodes, ", "))
				}
				b.WriteByte('\n')
			}
		}
		episodes := func(title string, l []EpisodeRef) {
			if len(l) == 0 {
				return
			}
			b.WriteString("\n" + title + ":\n")
			for _, e := range l {
				fmt.Fprintf(&b, "  %s %s/%s org=%s %s..%s events=%d", e.Episode, e.Check, e.Pattern, e.Org,
					e.FirstSeen.UTC().Format(time.RFC3339), e.LastSeen.UTC().Format(time.RFC3339), e.Events)
				if len(e.AlertPatterns) > 0 {
					b.WriteString(" alerted as " + strings.Join(e.AlertPatterns, ", "))
				}
				b.WriteByte('\n')
			}
		}
		alerts("false positives", r.FalsePositives)
		alerts("right check, wrong pattern", r.WrongPattern)
		episodes("missed episodes", r.Missed)
		episodes("episodes found with another pattern", r.FoundWrongPattern)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	return nil
}

// WriteJSON renders r as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	return nil
}

func ratio(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', 3, 64)
}
