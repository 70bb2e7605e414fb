package backtest

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
)

// WriteTable writes r for a reader: one row per check and pattern, then
// the examples of what differs, each with its explanation.
func WriteTable(w io.Writer, r Result) error {
	org := r.Org
	if org == "" {
		org = "every org"
	}
	if _, err := fmt.Fprintf(w, "backtest of %s, %s – %s: %d events re-judged\n\n", org,
		r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.Events); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "check\tpattern\tstored\tre-run\tnew\tgone\tchanged\tsame\t")
	for _, g := range r.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", g.Check, g.Pattern, g.Stored, g.Rerun, g.New, g.Gone, g.Changed, g.Same)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Empty() {
		_, err := fmt.Fprintln(w, "\nno difference: the re-run raises exactly the stored alerts")
		return err
	}
	for _, g := range r.Groups {
		for _, a := range g.Example.New {
			if err := example(w, "new", g, a, ""); err != nil {
				return err
			}
		}
		for _, a := range g.Example.Gone {
			if err := example(w, "gone", g, a, ""); err != nil {
				return err
			}
		}
		for _, c := range g.Example.Changed {
			note := fmt.Sprintf(" (%v; stored: %d events, last seen %s)", c.Fields, len(c.Stored.EventIDs), c.Stored.LastSeen.Format(time.RFC3339))
			if err := example(w, "changed", g, c.Rerun, note); err != nil {
				return err
			}
		}
	}
	return nil
}

// example writes one alert of a difference; pseudonymous refs only, as
// the alerts themselves carry.
func example(w io.Writer, kind string, g Group, a alert.Alert, note string) error {
	_, err := fmt.Fprintf(w, "\n%s %s/%s %s, %s, %s – %s, %d events%s\n  %s\n", kind, g.Check, g.Pattern, a.ID, a.Severity,
		a.FirstSeen.Format(time.RFC3339), a.LastSeen.Format(time.RFC3339), len(a.EventIDs), note, a.Explanation)
	return err
}

// WriteJSON writes r as one indented JSON document.
func WriteJSON(w io.Writer, r Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("backtest: write JSON: %w", err)
	}
	return nil
}
