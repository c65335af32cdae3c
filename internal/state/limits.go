package state

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Douyin's per-order refund limits (both APIs' documents): at most 50
// refunds per order, 300 when it was paid with Alipay (trade system
// pay_channel 2), and none once the order is a year old.
const (
	MaxRefundsPerOrder = 50
	MaxRefundsAlipay   = 300
	PayChannelAlipay   = 2
	RefundWindow       = 365 * 24 * time.Hour
)

// RefundCap is how many refunds Douyin takes of an order paid on
// payChannel.
func RefundCap(payChannel int) int {
	if payChannel == PayChannelAlipay {
		return MaxRefundsAlipay
	}
	return MaxRefundsPerOrder
}

// RefundsSent counts the refunds of an order that reached Douyin or may
// have: one per number sent (every attempt but a pending or cancelled
// refund's next one). Parked refunds count their last number too: it may
// have been created before it failed.
func RefundsSent(refunds []Refund) int {
	n := 0
	for _, r := range refunds {
		switch r.Phase {
		case PhasePending, PhaseCancelled:
			n += r.Attempt - 1
		case PhaseSubmitting, PhaseProcessing, PhaseSucceeded, PhaseParked:
			n += r.Attempt
		}
	}
	return n
}

// RefundLimit says why Douyin would refuse one more refund of o, which
// has sent refunds already, at now; "" when it would not. The count is
// checked only once the pay channel is known (the trade system reports
// it with order_query; ecpay never does, and payd leaves ecpay's count to
// Douyin); the age once the pay time is.
func RefundLimit(o Order, sent int, now time.Time) string {
	if o.PaidAt != nil && now.Sub(*o.PaidAt) > RefundWindow {
		return fmt.Sprintf("order %s was paid at %s, more than a year ago: Douyin takes no refund of it", o.OutOrderNo, o.PaidAt.UTC().Format(time.RFC3339))
	}
	if limit := RefundCap(o.PayChannel); o.PayChannel != 0 && sent >= limit {
		return fmt.Sprintf("order %s has %d refunds at Douyin: at most %d per order (%d when paid with Alipay)", o.OutOrderNo, sent, limit, MaxRefundsAlipay)
	}
	return ""
}

// sentRefunds counts the refunds of order id that reached Douyin.
func sentRefunds(tx *gorm.DB, id int64) (int, error) {
	var rs []Refund
	if err := tx.Select("phase", "attempt").Where("order_id = ?", id).Find(&rs).Error; err != nil {
		return 0, fmt.Errorf("count refunds: %w", err)
	}
	return RefundsSent(rs), nil
}
