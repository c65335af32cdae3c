package state

import "gorm.io/gorm"

// GORM calls these before every INSERT or struct UPDATE, so no time reaches
// the database in another zone or precision, whoever builds the row.

// BeforeSave stores the order's times in UTC at microsecond precision.
func (o *Order) BeforeSave(*gorm.DB) error {
	o.PaidAt, o.SettleAfter = utcPtr(o.PaidAt), utcPtr(o.SettleAfter)
	o.CheckAt, o.CheckedAt = utcPtr(o.CheckAt), utcPtr(o.CheckedAt)
	o.AutoSettleAt, o.NextActionAt, o.LeaseUntil = utcPtr(o.AutoSettleAt), utcPtr(o.NextActionAt), utcPtr(o.LeaseUntil)
	o.CreatedAt, o.UpdatedAt = utc(o.CreatedAt), utc(o.UpdatedAt)
	return nil
}

// BeforeSave stores the refund's times in UTC at microsecond precision.
func (r *Refund) BeforeSave(*gorm.DB) error {
	r.NextActionAt, r.DoneAt = utcPtr(r.NextActionAt), utcPtr(r.DoneAt)
	r.CreatedAt, r.UpdatedAt = utc(r.CreatedAt), utc(r.UpdatedAt)
	return nil
}

// BeforeSave stores the settlement's times in UTC at microsecond precision.
func (st *Settlement) BeforeSave(*gorm.DB) error {
	st.DueAt, st.NextActionAt, st.DoneAt = utcPtr(st.DueAt), utcPtr(st.NextActionAt), utcPtr(st.DoneAt)
	st.CreatedAt, st.UpdatedAt = utc(st.CreatedAt), utc(st.UpdatedAt)
	return nil
}

// BeforeSave stores the attempt's time in UTC at microsecond precision.
func (a *Attempt) BeforeSave(*gorm.DB) error {
	a.CreatedAt = utc(a.CreatedAt)
	return nil
}

// BeforeSave stores the callback's time in UTC at microsecond precision.
func (cb *Callback) BeforeSave(*gorm.DB) error {
	cb.ReceivedAt = utc(cb.ReceivedAt)
	return nil
}

// BeforeSave stores the event's time in UTC at microsecond precision.
func (e *Event) BeforeSave(*gorm.DB) error {
	e.CreatedAt = utc(e.CreatedAt)
	return nil
}
