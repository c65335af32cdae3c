// Package logkey holds the field keys of payd's structured logs, one
// meaning each everywhere: "order" is always the merchant's out_order_no,
// never a row id.
package logkey

// The log field keys.
const (
	App        = "app"        // the mini-program's app_id
	API        = "api"        // a Douyin call: query_order, create_refund, …
	Order      = "order"      // the merchant's out_order_no
	OrderRow   = "order_row"  // payd's row id of an order, where its number is not at hand
	Refund     = "refund"     // a refund's key or out_refund_no
	Settlement = "settlement" // a settlement's out_settle_no
	ErrNo      = "err_no"     // Douyin's err_no
	Action     = "action"     // a reconciler action kind
	Outcome    = "outcome"    // a call's outcome class
	No         = "no"         // the merchant number a call used
	Reason     = "reason"     // why, in words
	Job        = "job"        // a background job's name
	Component  = "component"  // the part of the daemon logging
	Replica    = "replica"    // a replica's name: host/pid
	Type       = "type"       // a callback's type
	Subject    = "subject"    // what a callback is about: a merchant number or Douyin's id
)
