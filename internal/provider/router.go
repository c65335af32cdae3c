package provider

import (
	"context"
	"fmt"
	"time"
)

// Router is a Provider that sends each call to the provider of the call's
// app: one adapter per API, each app on the API it speaks.
type Router struct {
	byApp map[string]Provider
	// legacy serves the ecpay calls of apps moved to the trade system.
	legacy map[string]Provider
	// fallback serves apps not named (nil: they are refused as
	// configuration errors).
	fallback Provider
}

// NewRouter returns a router over byApp; fallback (may be nil) serves the
// apps it does not name.
func NewRouter(byApp map[string]Provider, fallback Provider) *Router {
	return &Router{byApp: byApp, fallback: fallback}
}

var (
	_ Provider = (*Router)(nil)
	_ Budget   = (*Router)(nil)
)

// Legacy makes p (an ecpay adapter) serve the calls of appID's orders
// that name APIEcpay: the app moved to the trade system and its items sent
// under ecpay finish there. It returns r.
func (r *Router) Legacy(appID string, p Provider) *Router {
	if r.legacy == nil {
		r.legacy = map[string]Provider{}
	}
	r.legacy[appID] = p
	return r
}

// route is the provider of a call for o: the legacy one when o names
// ecpay and the app has one.
func (r *Router) route(o OrderRef) (Provider, error) {
	if o.API == APIEcpay {
		if p, ok := r.legacy[o.AppID]; ok {
			return p, nil
		}
	}
	return r.of(o.AppID)
}

func (r *Router) of(appID string) (Provider, error) {
	if p, ok := r.byApp[appID]; ok {
		return p, nil
	}
	if r.fallback != nil {
		return r.fallback, nil
	}
	return nil, &Error{Class: Configuration, ErrNo: -1, Tips: fmt.Sprintf("app %s is not configured (douyin.apps)", appID)}
}

// QueryOrder implements Provider.
func (r *Router) QueryOrder(ctx context.Context, o OrderRef) (*OrderInfo, error) {
	p, err := r.route(o)
	if err != nil {
		return nil, err
	}
	return p.QueryOrder(ctx, o)
}

// CreateRefund implements Provider.
func (r *Router) CreateRefund(ctx context.Context, req RefundRequest) (*RefundInfo, error) {
	p, err := r.route(req.Order)
	if err != nil {
		return nil, err
	}
	return p.CreateRefund(ctx, req)
}

// QueryRefund implements Provider.
func (r *Router) QueryRefund(ctx context.Context, o OrderRef, ref ItemRef) (*RefundInfo, error) {
	p, err := r.route(o)
	if err != nil {
		return nil, err
	}
	return p.QueryRefund(ctx, o, ref)
}

// CreateSettle implements Provider.
func (r *Router) CreateSettle(ctx context.Context, req SettleRequest) (*SettleInfo, error) {
	p, err := r.route(req.Order)
	if err != nil {
		return nil, err
	}
	return p.CreateSettle(ctx, req)
}

// QuerySettle implements Provider.
func (r *Router) QuerySettle(ctx context.Context, o OrderRef, ref ItemRef) (*SettleInfo, error) {
	p, err := r.route(o)
	if err != nil {
		return nil, err
	}
	return p.QuerySettle(ctx, o, ref)
}

// Delay implements Budget; an app whose provider has no budget never waits.
func (r *Router) Delay(appID string, call Call) time.Duration {
	if p, err := r.of(appID); err == nil {
		if b, ok := p.(Budget); ok {
			return b.Delay(appID, call)
		}
	}
	return 0
}

// Rate implements Budget; 0 for an app whose provider has no budget.
func (r *Router) Rate(appID string, call Call) float64 {
	if p, err := r.of(appID); err == nil {
		if b, ok := p.(Budget); ok {
			return b.Rate(appID, call)
		}
	}
	return 0
}

var _ Auditor = (*Router)(nil)

// AuditRefund implements Auditor; an app whose provider has no audits is
// refused as a configuration error.
func (r *Router) AuditRefund(ctx context.Context, o OrderRef, ref ItemRef, d AuditDecision) error {
	p, err := r.of(o.AppID)
	if err != nil {
		return err
	}
	a, ok := p.(Auditor)
	if !ok {
		return &Error{Class: Configuration, ErrNo: -1, Tips: fmt.Sprintf("app %s: its API has no refund audits", o.AppID)}
	}
	return a.AuditRefund(ctx, o, ref, d)
}
