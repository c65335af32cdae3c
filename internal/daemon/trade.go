package daemon

import (
	"context"
	"crypto/rsa"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/logkey"
	"github.com/payd/payd/internal/metrics"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/server"
	"github.com/payd/payd/internal/state"
)

// tokenStorer is what the trade wiring needs of the store: the shared
// client_token rows. *state.Store satisfies it.
type tokenStorer interface {
	ClientTokens() *state.ClientTokens
}

// tradeProviders returns the trade adapter of every api: trade app of cfg.
// All of them share one client, whose access tokens live in the database
// (every process — serve, apply, a CLI command — reads the one shared
// token; only the replica holding the refresh lease fetches), and the
// ecpay client's limiter, so that the replicas' share applies to both.
// An app whose adapter cannot be built (Validate prevents it) gets a
// provider that refuses every call as a configuration error naming why.
func tradeProviders(cfg *config.Config, st any, ecpay *douyin.Client, log *logrus.Entry, m *metrics.Metrics) map[string]provider.Provider {
	out := map[string]provider.Provider{}
	var apps []config.App
	for _, a := range cfg.Douyin.Apps {
		if a.IsTrade() {
			apps = append(apps, a)
		}
	}
	if len(apps) == 0 {
		return out
	}
	client, err := newTradeClient(cfg, apps, st, ecpay, log, m)
	for _, a := range apps {
		if err != nil {
			out[a.AppID] = brokenProvider{err: err}
			continue
		}
		opts := trade.AdapterOptions{EntryPath: a.OrderEntrySchema.Path, EntryParams: a.OrderEntrySchema.EntryParams}
		out[a.AppID] = trade.NewAdapter(client, opts)
	}
	return out
}

// newTradeClient builds the trade client of apps over the shared tokens.
func newTradeClient(cfg *config.Config, apps []config.App, st any, ecpay *douyin.Client, log *logrus.Entry, m *metrics.Metrics) (*trade.Client, error) {
	ts, ok := st.(tokenStorer)
	if !ok {
		return nil, fmt.Errorf("trade apps: the store %T keeps no client tokens", st)
	}
	creds := make([]trade.Credential, len(apps))
	for i, a := range apps {
		creds[i] = trade.Credential{AppID: a.AppID, ClientKey: a.ClientKey, Secret: a.ClientSecret}
	}
	tokens, err := trade.NewTokens(trade.TokensOptions{
		BaseURL: cfg.Douyin.Trade.URL(), Apps: creds, Store: ts.ClientTokens(), Holder: ProcessOwner(),
		Log: log.WithField("component", "trade_tokens"),
	})
	if err != nil {
		return nil, err
	}
	o := trade.Options{BaseURL: cfg.Douyin.Trade.URL(), Tokens: tokens, Limiter: ecpay.Limiter(), Timeout: cfg.Douyin.Timeout.Duration}
	if m != nil {
		o.Observe = func(ci trade.CallInfo) {
			m.ObserveCall(douyin.CallInfo{AppID: ci.AppID, API: ci.API.Limit(), Waited: ci.Waited, Latency: ci.Latency, ErrNo: ci.ErrNo, Class: ci.Class})
		}
	}
	return trade.New(o)
}

// tradePlatformKeys are the platform public keys of the trade apps, which
// verify their callbacks. Validate has read every key; one that cannot be
// read now is logged, and that app's callbacks are refused (Douyin sends
// them again) until payd is restarted with the key in place.
func tradePlatformKeys(cfg *config.Config, log *logrus.Entry) map[string]*rsa.PublicKey {
	keys := map[string]*rsa.PublicKey{}
	for _, a := range cfg.Douyin.Apps {
		if !a.IsTrade() {
			continue
		}
		pub, _, err := a.TradeKeys()
		if err != nil {
			log.WithError(err).WithField(logkey.App, a.AppID).Error("trade app: cannot read its keys: its callbacks are refused")
			continue
		}
		keys[a.AppID] = pub
	}
	return keys
}

// tradePreRefunder answers the trade apps' pre_create_refund callbacks
// from the database, with each app's order_entry_schema.
func tradePreRefunder(cfg *config.Config, st *state.Store, w server.Waker, clk clock.Clock) *server.StorePreRefunder {
	schemas := map[string]config.EntrySchema{}
	for _, a := range cfg.Douyin.Apps {
		if a.IsTrade() {
			schemas[a.AppID] = a.OrderEntrySchema
		}
	}
	entry := func(appID, outOrderNo string) trade.EntrySchema {
		s := schemas[appID]
		if s.Path == "" {
			return trade.EntrySchema{}
		}
		return trade.EntrySchema{Path: s.Path, Params: s.EntryParams(outOrderNo)}
	}
	return &server.StorePreRefunder{Store: st, Clock: clk, Entry: entry, Waker: w}
}

// tradePolicy sets the reconciler's policy of a trade app: its settle
// period is settle_days counted from payment or fulfilment (settle_rule;
// CPS orders: fulfilment D+3), and an app Douyin settles itself is never
// settled by settle_batch.
func tradePolicy(p *reconcile.AppPolicy, a config.App) {
	if !a.IsTrade() {
		return
	}
	p.SettlePeriod = time.Duration(a.SettleDays) * 24 * time.Hour
	p.API = provider.APITrade
	p.Rule = reconcile.RulePayment
	if a.SettleRule == config.RuleFulfilment {
		p.Rule = reconcile.RuleFulfilment
	}
	p.CPSFulfilment = true
	if a.SettledBy == config.SettledByDy {
		p.AutoSettle, p.SettledByDouyin = false, true
	}
	p.Audit = auditPolicy(a.Audit)
}

// auditPolicy is the reconciler's form of an app's audit policy.
func auditPolicy(a config.AuditPolicy) reconcile.AuditPolicy {
	out := reconcile.AuditPolicy{Default: state.AuditDecision(a.Default), DefaultMessage: a.DefaultMessage}
	for _, r := range a.Rules {
		out.Rules = append(out.Rules, reconcile.AuditRule{MaxAmount: r.MaxAmount, Fulfilled: r.Fulfilled, Action: state.AuditDecision(r.Action), Message: r.Message})
	}
	return out
}

// brokenProvider refuses every call of an app whose adapter could not be
// built.
type brokenProvider struct{ err error }

var _ provider.Provider = brokenProvider{}

func (b brokenProvider) fail() error {
	return &provider.Error{Class: provider.Configuration, ErrNo: -1, Tips: b.err.Error(), Err: b.err}
}

// QueryOrder implements provider.Provider.
func (b brokenProvider) QueryOrder(context.Context, provider.OrderRef) (*provider.OrderInfo, error) {
	return nil, b.fail()
}

// CreateRefund implements provider.Provider.
func (b brokenProvider) CreateRefund(context.Context, provider.RefundRequest) (*provider.RefundInfo, error) {
	return nil, b.fail()
}

// QueryRefund implements provider.Provider.
func (b brokenProvider) QueryRefund(context.Context, provider.OrderRef, provider.ItemRef) (*provider.RefundInfo, error) {
	return nil, b.fail()
}

// CreateSettle implements provider.Provider.
func (b brokenProvider) CreateSettle(context.Context, provider.SettleRequest) (*provider.SettleInfo, error) {
	return nil, b.fail()
}

// QuerySettle implements provider.Provider.
func (b brokenProvider) QuerySettle(context.Context, provider.OrderRef, provider.ItemRef) (*provider.SettleInfo, error) {
	return nil, b.fail()
}
