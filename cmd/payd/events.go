package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/events"
	"github.com/payd/payd/internal/state"
)

func newEventsCmd(g *globals) *cobra.Command {
	var failed, asJSON bool
	var limit int
	var endpoint string
	cmd := &cobra.Command{
		Use:   "events [--failed] [--json] [--limit N]",
		Short: "List event deliveries to the configured endpoints; replay them",
		Long: `events lists the deliveries of outbox events to the endpoints in events.endpoints, newest
event first: status (pending, delivered, dead), attempts, the last HTTP status and error.
--failed keeps the dead ones and the pending ones that have failed at least once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ds, err := st.ListDeliveries(cmd.Context(), state.DeliveryFilter{Failed: failed, Limit: limit, Endpoint: endpoint})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, api.FromDeliveries(ds))
			}
			printDeliveries(g.stdout, ds)
			return nil
		},
	}
	cmd.Flags().BoolVar(&failed, "failed", false, "only dead deliveries and pending ones that have failed")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many deliveries")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "only this endpoint")
	cmd.AddCommand(newEventsReplayCmd(g))
	return cmd
}

func newEventsReplayCmd(g *globals) *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "replay ID | --since TIME",
		Short: "Send an event, or every event since TIME (RFC 3339), again to every endpoint that wants it",
		Long: `replay makes the deliveries of one event (by id) or of every event created at or after
--since due now, with a fresh retry schedule, creating those an endpoint never had (one added
after the event). The running daemon sends them on its next pass.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (since != "") {
				return errors.New("replay: give an event ID or --since TIME, not both")
			}
			var from time.Time
			if since != "" {
				var err error
				if from, err = api.ParseTime(since); err != nil {
					return fmt.Errorf("--since %s: %v", since, err)
				}
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if len(cfg.Events.Endpoints) == 0 {
				return errors.New("replay: events.endpoints is empty: nothing to send to")
			}
			st, err := g.openExisting(cmd.Context(), cfg, clock.Real{})
			if err != nil {
				return err
			}
			defer st.Close()
			subs := events.Subscriptions(daemon.EventEndpoints(cfg))
			now := clock.Real{}.Now()
			var n int
			if since != "" {
				n, err = st.ReplaySince(cmd.Context(), subs, from, now)
			} else {
				n, err = st.ReplayEvent(cmd.Context(), subs, args[0], now)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%d deliveries due now\n", n)
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "replay every event created at or after this RFC 3339 time")
	return cmd
}

func printDeliveries(w io.Writer, ds []state.Delivery) {
	if len(ds) == 0 {
		fmt.Fprintln(w, "No deliveries.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tTYPE\tORDER\tENDPOINT\tSTATUS\tATTEMPTS\tLAST\tNEXT")
	for _, d := range ds {
		last := "-"
		if d.Attempts > 0 {
			last = fmt.Sprintf("%d %s", d.LastStatus, d.LastError)
		}
		next := "-"
		if d.Status == state.DeliveryPending {
			next = ts(d.NextAttemptAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.EventID, d.EventType, d.OutOrderNo, d.Endpoint, d.Status, d.Attempts, last, next)
	}
	tw.Flush()
}
