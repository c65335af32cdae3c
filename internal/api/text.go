package api

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/payd/payd/internal/state"
)

// WriteHistory prints an order's history as payd status ORDER shows it:
// the order, its refunds (who started them, their audit), settlement,
// calls, callbacks and events.
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
	if s := h.Settlement; s != nil {
		fmt.Fprintln(tw, "\nSETTLEMENT\tAMOUNT\tPHASE\tATTEMPT\tDUE\tNEXT\tNOTE")
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", s.OutSettleNo, s.Amount, s.Phase, s.Attempt, ts(s.DueAt), ts(s.NextActionAt), note(s.ParkReason, s.ErrTips))
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
