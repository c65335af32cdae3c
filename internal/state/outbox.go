package state

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"
)

// NewEvent is an outbox event written with a change, in its transaction.
type NewEvent struct {
	Type EventType
	// AppID and OutOrderNo default to the changed row's order.
	AppID, OutOrderNo string
	// Payload is marshalled to JSON.
	Payload any
}

// insertEvents writes evs; appID and outOrderNo fill what they leave empty.
func (s *Store) insertEvents(tx *gorm.DB, evs []NewEvent, appID, outOrderNo string) error {
	for _, e := range evs {
		if e.Type == "" {
			return invalidf("event: type required")
		}
		payload, err := json.Marshal(e.Payload)
		if err != nil {
			return fmt.Errorf("event %s: encode payload: %w", e.Type, err)
		}
		row := Event{ID: newEventID(), Type: e.Type, AppID: e.AppID, OutOrderNo: e.OutOrderNo, Payload: string(payload), CreatedAt: s.now()}
		if row.AppID == "" {
			row.AppID = appID
		}
		if row.OutOrderNo == "" {
			row.OutOrderNo = outOrderNo
		}
		// By hand rather than through Create (see insertAttempt); the
		// sequence number is not needed here.
		if _, err := exec(tx, "INSERT INTO events (id, type, app_id, out_order_no, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
			row.ID, row.Type, row.AppID, row.OutOrderNo, row.Payload, row.CreatedAt); err != nil {
			return fmt.Errorf("insert event %s: %w", e.Type, err)
		}
	}
	return nil
}

// newEventID returns "evt_" and 128 random bits in hex.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "evt_" + hex.EncodeToString(b[:])
}

// insertOrderEvents writes events that default to order id's app and number.
func (s *Store) insertOrderEvents(tx *gorm.DB, orderID int64, events []NewEvent) error {
	if len(events) == 0 {
		return nil
	}
	var o Order
	if err := firstRow(tx.Select("app_id, out_order_no").Where("id = ?", orderID), &o); err != nil {
		return fmt.Errorf("read order %d: %w", orderID, err)
	}
	return s.insertEvents(tx, events, o.AppID, o.OutOrderNo)
}
