package api

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/payd/payd/internal/state"
)

// WriteHistory prints an order's history as payd status ORDER shows it:
// the order, its refunds (who started them, their audit), its settlement
// or its item orders' settlements, fulfilments, calls, callbacks and
// events.
func WriteHistory(w io.Writer, h *state.History) {
	o := h.Order
	fmt.Fprintf(w, "Order %s (app %s)\n", o.OutOrderNo, o.AppID)
	fmt.Fprintf(w, "  status:       %s\n  douyin id:    %s\n  total:        %d fen\n  paid_at:      %s\n  cps share:    %d fen (known: %v)\n  settle after: %s\n  next action:  %s\n",
		o.Status, o.DouyinOrderID, o.TotalAmount, ts(o.PaidAt), o.CPSShare, o.CPSKnown, ts(o.SettleAfter), ts(o.NextActionAt))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(h.Refunds) > 0 {
		fmt.Fprintln(tw, "\nREFUND\tAMOUNT\tPHASE\tATTEMPT\tNUMBER\tNEXT\tNOTE")
		for _, r := range h.Refunds {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", r.Key, r.Amount, r.Phase, r.Attempt, r.OutRefundNo, ts(r.NextActionAt), sourceNote(r.Source, auditNote(r, note(r.ParkReason, r.ErrTips))))
		}
	}
	if sts := h.Settlements(); len(sts) > 0 {
		fmt.Fprintln(tw, "\nSETTLEMENT\tITEM ORDER\tAMOUNT\tPHASE\tATTEMPT\tDUE\tNEXT\tNOTE")
		for _, s := range sts {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", s.OutSettleNo, orDash(s.ItemOrderID), s.Amount, s.Phase, s.Attempt,
				ts(s.DueAt), ts(s.NextActionAt), settleNote(s))
		}
	}
	if len(h.Fulfilments) > 0 {
		fmt.Fprintln(tw, "\nFULFILMENT\tITEM ORDER\tFULFILLED AT")
		for _, f := range h.Fulfilments {
			what := "whole order"
			if f.ItemOrderID != "" {
				what = "item order"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", what, orDash(f.ItemOrderID), f.FulfilledAt.UTC().Format(time.RFC3339))
		}
	}
	if len(h.Attempts) > 0 {
		fmt.Fprintln(tw, "\nCALL\tNUMBER\tOUTCOME\tERR_NO\tMS\tAT")
		for _, a := range h.Attempts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", a.API, a.MerchantNo, a.Outcome, a.ErrNo, a.LatencyMS, a.CreatedAt.UTC().Format(time.RFC3339))
		}
	}
	if len(h.Callbacks) > 0 {
		fmt.Fprintln(tw, "\nCALLBACK\tSUBJECT\tRECEIVED")
		for _, c := range h.Callbacks {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Type, c.SubjectNo, c.ReceivedAt.UTC().Format(time.RFC3339))
		}
	}
	if len(h.Events) > 0 {
		fmt.Fprintln(tw, "\nEVENT\tID\tAT")
		for _, e := range h.Events {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Type, e.ID, e.CreatedAt.UTC().Format(time.RFC3339))
		}
	}
	tw.Flush()
}

// settleNote is a settlement's note: who settles it, when Douyin does,
// and why it is parked or what Douyin said last.
func settleNote(s *state.Settlement) string {
	n := note(s.ParkReason, s.ErrTips)
	if s.Source != state.SettleByDouyin {
		return n
	}
	if n == "" {
		return "settled by Douyin (observed)"
	}
	return "settled by Douyin (observed): " + n
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func note(park, tips string) string {
	if park != "" {
		return park
	}
	return tips
}

// sourceNote prefixes a refund's note with who started it, for refunds
// payd adopted from the trade system.
func sourceNote(src state.RefundSource, n string) string {
	if src == state.SourcePayd {
		return n
	}
	if n == "" {
		return "started by " + string(src)
	}
	return "started by " + string(src) + ": " + n
}

// auditNote adds where a refund's audit stands to its note.
func auditNote(r state.Refund, n string) string {
	if r.AuditPhase == state.AuditNone {
		return n
	}
	a := "audit " + string(r.AuditPhase)
	if r.AuditDecision != "" {
		a += " (" + string(r.AuditDecision) + " by " + r.AuditBy + ")"
	}
	if r.AuditPhase.Open() && r.AuditDeadline != nil {
		a += ", Douyin approves at " + ts(r.AuditDeadline)
	}
	if n == "" {
		return a
	}
	return a + "; " + n
}

func ts(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// WriteSummary prints payd status's counts: orders by status, refunds and
// settlements by phase with their sums, over every app and then per app.
func WriteSummary(w io.Writer, s Summary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDERS\tSTATUS\tCOUNT")
	for _, c := range s.Orders {
		fmt.Fprintf(tw, "\t%s\t%d\n", c.Status, c.Count)
	}
	fmt.Fprintln(tw, "REFUNDS\tPHASE\tCOUNT\tFEN")
	for _, c := range s.Refunds {
		fmt.Fprintf(tw, "\t%s\t%d\t%d\n", c.Phase, c.Count, c.Amount)
	}
	fmt.Fprintln(tw, "SETTLEMENTS\tPHASE\tCOUNT\tFEN")
	for _, c := range s.Settlements {
		fmt.Fprintf(tw, "\t%s\t%d\t%d\n", c.Phase, c.Count, c.Amount)
	}
	tw.Flush()
	fmt.Fprintf(w, "settled: %d fen; events written: %d\n", s.SettledAmount, s.Events)
	if len(s.Apps) == 0 {
		return
	}
	fmt.Fprintln(w, "\nBy app:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tOF\tSTATUS/PHASE\tCOUNT\tFEN")
	for _, a := range s.Apps {
		first, last := a.AppID, ""
		row := func(of string, c Count, amount bool) {
			fen, kind := "", of
			if amount {
				fen = fmt.Sprint(c.Amount)
			}
			if of == last {
				kind = ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s%s\t%d\t%s\n", first, kind, c.Status, c.Phase, c.Count, fen)
			first, last = "", of
		}
		for _, c := range a.Orders {
			row("orders", c, false)
		}
		for _, c := range a.Refunds {
			row("refunds", c, true)
		}
		for _, c := range a.Settlements {
			row("settlements", c, true)
		}
		if a.SettledAmount > 0 {
			fmt.Fprintf(tw, "%s\tsettled\t\t\t%d\n", first, a.SettledAmount)
		}
	}
	tw.Flush()
}
