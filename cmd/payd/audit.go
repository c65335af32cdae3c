package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/state"
)

func newAuditCmd(g *globals) *cobra.Command {
	var message string
	cmd := &cobra.Command{
		Use:   "audit (agree|deny) REFUND [--message TEXT]",
		Short: "Decide a refund a user started that awaits the merchant's audit",
		Long: `audit stores a person's decision on a refund awaiting audit (REFUND is Douyin's refund_id
or payd's refund key); the reconciler sends it once with refund_audit_callback before the
deadline. deny needs --message, which the buyer reads. Without a decision Douyin approves the
refund at its deadline; payd plan lists every refund awaiting audit.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, st, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			r, err := st.DecideAudit(cmd.Context(), state.AuditWish{Refund: args[1], Decision: state.AuditDecision(args[0]), Message: message}, clock.Real{}.Now())
			if errors.Is(err, state.ErrNotFound) {
				return fmt.Errorf("audit %s: no refund has that refund_id or key (payd plan lists the refunds awaiting audit)", args[1])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "refund %s: %s stored, sent to Douyin by the next reconcile pass (deadline %s)\n", r.Key, r.AuditDecision, r.AuditDeadline.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&message, "message", "", "the reason the buyer reads (required to deny)")
	return cmd
}
