package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/state"
)

// ForeignRefunds adopts refunds started at Douyin and settlements Douyin
// made itself. *state.Store satisfies it.
type ForeignRefunds interface {
	AdoptForeignRefund(ctx context.Context, f state.ForeignRefund, now time.Time) (*state.Refund, bool, error)
	AdoptSettlement(ctx context.Context, f state.ForeignSettlement, now time.Time) (bool, error)
}

// StorePreRefunder is the PreRefunder over payd's store: it stores the
// user's refund (keyed by refund_id, processing) and only then answers
// with its out_refund_no — the same number for every retry of that
// refund_id, since the number is derived from it and the row is found
// again. It also adopts refunds payd never asked for when their refund
// callback arrives (customer service, expiry, a lost pre_create_refund).
type StorePreRefunder struct {
	Store ForeignRefunds
	Clock clock.Clock
	// Entry is the order_entry_schema answered for an order of an app
	// (its page in the mini-program); nil or a zero path sends none.
	Entry func(appID, outOrderNo string) trade.EntrySchema
	// Waker is told of an adopted refund; may be nil.
	Waker Waker
}

var (
	_ PreRefunder   = (*StorePreRefunder)(nil)
	_ RefundAdopter = (*StorePreRefunder)(nil)
	_ SettleAdopter = (*StorePreRefunder)(nil)
)

// PreCreateRefund implements PreRefunder. A message payd cannot store
// (no amount, a malformed order number) is refused with err_no 1 and the
// reason; a store failure returns the error, so that no answer is given
// and Douyin asks again.
func (p *StorePreRefunder) PreCreateRefund(ctx context.Context, cb *trade.Callback) ([]byte, error) {
	m := cb.PreCreateRefund
	f := state.ForeignRefund{
		AppID: cb.AppID, OutOrderNo: string(m.OutOrderNo), DouyinOrderID: string(m.OrderID), RefundID: string(m.RefundID),
		Amount: int64(m.RefundTotalAmount), Source: state.SourceOf(int(m.RefundSource)), Reason: strings.Join(m.RefundReason, "; "),
		NeedAudit: m.NeedRefundAudit == 1,
	}
	if m.RefundAuditDeadline > 0 {
		f.AuditDeadline = trade.Millis(m.RefundAuditDeadline)
	}
	r, created, err := p.Store.AdoptForeignRefund(ctx, f, p.now())
	if errors.Is(err, state.ErrInvalid) {
		return trade.PreCreateRefundRefusal(1, "payd cannot take this refund: "+err.Error()), nil
	}
	if err != nil {
		return nil, err
	}
	if created && p.Waker != nil {
		p.Waker.Wake()
	}
	no := r.OutRefundNo
	if no == "" {
		no = state.RefundNo(state.UserRefundKey(cb.AppID, f.RefundID), 1)
	}
	var schema trade.EntrySchema
	if p.Entry != nil {
		schema = p.Entry(cb.AppID, f.OutOrderNo)
	}
	return trade.PreCreateRefundAnswer(no, schema), nil
}

// AdoptRefund adopts the refund a verified refund callback names when
// payd has no row for it (started by customer service or an expiry, or a
// user's whose pre_create_refund answer was lost). The callback itself is
// stored as usual; the adopted row is queried, never trusted.
func (p *StorePreRefunder) AdoptRefund(ctx context.Context, cb *trade.Callback) error {
	m := cb.Refund
	if m == nil || m.RefundID == "" || m.RefundTotalAmount <= 0 {
		return nil
	}
	source := state.SourceDouyin
	switch m.RefundType {
	case 1:
		source = state.SourceUser
	case 4:
		source = state.SourceCustomerService
	}
	_, created, err := p.Store.AdoptForeignRefund(ctx, state.ForeignRefund{
		AppID: cb.AppID, DouyinOrderID: string(m.OrderID), RefundID: string(m.RefundID), OutRefundNo: string(m.OutRefundNo),
		Amount: int64(m.RefundTotalAmount), Source: source, Reason: string(m.Message),
	}, p.now())
	if errors.Is(err, state.ErrNotFound) {
		return nil // an order payd does not know: nothing to subtract from
	}
	if err == nil && created && p.Waker != nil {
		p.Waker.Wake()
	}
	return err
}

// AdoptSettle adopts the settlement a verified settle callback names when
// payd did not make it (Douyin's auto-settlement): the order's
// settlement is then observed, found by the order and reported, never
// sent. A failed settlement, or one of an order payd does not know by
// Douyin's order_id, is only hinted.
func (p *StorePreRefunder) AdoptSettle(ctx context.Context, cb *trade.Callback) error {
	m := cb.Settle
	if m == nil || m.SettleID == "" || m.OrderID == "" || m.Status == trade.SettleFail {
		return nil
	}
	adopted, err := p.Store.AdoptSettlement(ctx, state.ForeignSettlement{
		AppID: cb.AppID, DouyinOrderID: string(m.OrderID), ItemOrderID: string(m.ItemOrderID),
		SettleID: string(m.SettleID), OutSettleNo: string(m.OutSettleNo),
	}, p.now())
	if err == nil && adopted && p.Waker != nil {
		p.Waker.Wake()
	}
	return err
}

func (p *StorePreRefunder) now() time.Time {
	if p.Clock == nil {
		return clock.Real{}.Now()
	}
	return p.Clock.Now()
}
