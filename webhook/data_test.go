package webhook

import (
	"errors"
	"testing"
)

func TestEvent_TypedData(t *testing.T) {
	ev := &Event{Type: TypeRefundSucceeded, Data: []byte(`{"out_order_no":"o1","key":"k1","out_refund_no":"k1-2","douyin_refund_id":"rf9","amount":300,"attempt":2,"phase":"succeeded","after_settlement":true}`)}
	r, err := ev.Refund()
	if err != nil {
		t.Fatal(err)
	}
	if r.OutRefundNo != "k1-2" || r.DouyinRefundID != "rf9" || r.Amount != 300 || !r.AfterSettlement || r.Phase != "succeeded" {
		t.Fatalf("refund data %+v", r)
	}
	if _, err := ev.Settlement(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a refund event read as a settlement: %v", err)
	}
	s := &Event{Type: TypeSettlementSucceeded, Data: []byte(`{"out_settle_no":"st1","amount":700,"receivers":[{"merchant_uid":"m1","amount":100}]}`)}
	sd, err := s.Settlement()
	if err != nil || sd.Amount != 700 || len(sd.Receivers) != 1 || sd.Receivers[0].MerchantUID != "m1" {
		t.Fatalf("settlement data %+v, %v", sd, err)
	}
	bad := &Event{Type: TypeOrderPaid, Data: []byte(`{"total_amount":"lots"}`)}
	if _, err := bad.Order(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad data: %v", err)
	}
}
