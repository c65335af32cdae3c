// Package ordersign signs the order data a trade app's mini-program hands
// to tt.requestOrder (the Byte-Authorization header, with the app's private
// key and key_version) and records the order payd now expects, so that payd
// knows it before Douyin's first callback. payd order sign and POST
// /v1/orders/sign both use it.
package ordersign

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/state"
)

// DefaultPayWindow is how long payd waits before its first order_query of
// an order whose data names no payExpireSeconds (Douyin's default is not
// documented); a payment callback brings the query forward.
const DefaultPayWindow = time.Hour

// Store is what signing records. *state.Store satisfies it.
type Store interface {
	ExpectOrder(ctx context.Context, in state.OrderInput, checkAt, now time.Time) (*state.Order, bool, error)
}

var _ Store = (*state.Store)(nil)

// app is one trade app's signing material.
type app struct {
	field      string // the app's config path, for errors
	key        *rsa.PrivateKey
	keyVersion string
	entry      config.EntrySchema
	keyErr     error
}

// Signer signs order data for the trade apps of a config.
type Signer struct {
	apps    map[string]app
	ecpay   map[string]bool
	only    string // the one app, when only one is configured
	store   Store
	nonceFn func() string
}

// New returns the signer of cfg's trade apps over st. Keys are read now;
// an app whose key cannot be read is refused when asked to sign, with why.
func New(cfg *config.Config, st Store) *Signer {
	s := &Signer{apps: map[string]app{}, ecpay: map[string]bool{}, store: st, nonceFn: nonce}
	for i, a := range cfg.Douyin.Apps {
		if len(cfg.Douyin.Apps) == 1 {
			s.only = a.AppID
		}
		if !a.IsTrade() {
			s.ecpay[a.AppID] = true
			continue
		}
		ap := app{field: fmt.Sprintf("douyin.apps[%d]", i), keyVersion: a.KeyVersion, entry: a.OrderEntrySchema}
		_, ap.key, ap.keyErr = a.TradeKeys()
		s.apps[a.AppID] = ap
	}
	return s
}

// Sign validates data (the order data of tt.requestOrder, a JSON object
// with outOrderNo, totalAmount and skuList), adds the app's default
// orderEntrySchema when it has none, signs the exact text it returns and
// records the order as expected. It signs right before answering: Douyin
// refuses timestamps older than an hour.
func (s *Signer) Sign(ctx context.Context, req api.SignOrderRequest, now time.Time) (*api.SignedOrder, error) {
	appID := req.AppID
	if appID == "" {
		appID = s.only
	}
	a, err := s.app(appID)
	if err != nil {
		return nil, err
	}
	text, in, window, err := orderData(req.Data, a.entry)
	if err != nil {
		return nil, invalid(err.Error())
	}
	in.AppID = appID
	auth, err := trade.SignOrderData(a.key, appID, a.keyVersion, strconv.FormatInt(now.Unix(), 10), s.nonceFn(), text)
	if err != nil {
		return nil, fmt.Errorf("sign order %s: %w", in.OutOrderNo, err)
	}
	if _, _, err := s.store.ExpectOrder(ctx, in, now.Add(window), now); err != nil {
		return nil, err
	}
	return &api.SignedOrder{AppID: appID, OutOrderNo: in.OutOrderNo, TotalAmount: in.TotalAmount, Data: string(text), ByteAuthorization: auth.String()}, nil
}

// app finds a trade app that can sign.
func (s *Signer) app(appID string) (app, error) {
	a, ok := s.apps[appID]
	switch {
	case appID == "":
		return app{}, invalid("app_id: required when several apps are configured")
	case s.ecpay[appID]:
		return app{}, invalidf("app_id: %s speaks ecpay, whose orders payd creates itself (POST /v1/orders)", appID)
	case !ok:
		return app{}, invalidf("app_id: %q is not configured in douyin.apps", appID)
	case a.keyErr != nil:
		return app{}, invalidf("%s: %v", a.field, a.keyErr)
	case a.key == nil:
		return app{}, invalidf("%s.private_key_file: required to sign order data (or private_key from the environment)", a.field)
	}
	return a, nil
}

// orderData checks the order data and returns the text to sign, the order
// to record and how long its buyer has to pay.
func orderData(raw json.RawMessage, entry config.EntrySchema) ([]byte, state.OrderInput, time.Duration, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, state.OrderInput{}, 0, errors.New("data: want the JSON object of tt.requestOrder's order data")
	}
	var d struct {
		OutOrderNo       string            `json:"outOrderNo"`
		TotalAmount      int64             `json:"totalAmount"`
		PayExpireSeconds int64             `json:"payExpireSeconds"`
		SKUList          []json.RawMessage `json:"skuList"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, state.OrderInput{}, 0, fmt.Errorf("data: %v", err)
	}
	switch {
	case d.OutOrderNo == "":
		return nil, state.OrderInput{}, 0, errors.New("data.outOrderNo: required")
	case d.TotalAmount <= 0:
		return nil, state.OrderInput{}, 0, errors.New("data.totalAmount: required, positive fen")
	case len(d.SKUList) == 0:
		return nil, state.OrderInput{}, 0, errors.New("data.skuList: required, at least one item")
	case d.PayExpireSeconds < 0:
		return nil, state.OrderInput{}, 0, errors.New("data.payExpireSeconds: must not be negative")
	}
	if _, ok := fields["orderEntrySchema"]; !ok && entry.Path != "" {
		b, _ := json.Marshal(map[string]string{"path": entry.Path, "params": entry.EntryParams(d.OutOrderNo)})
		fields["orderEntrySchema"] = b
	}
	text, err := json.Marshal(fields)
	if err != nil {
		return nil, state.OrderInput{}, 0, fmt.Errorf("data: %v", err)
	}
	window := DefaultPayWindow
	if d.PayExpireSeconds > 0 {
		window = time.Duration(d.PayExpireSeconds)*time.Second + time.Minute
	}
	return text, state.OrderInput{OutOrderNo: d.OutOrderNo, TotalAmount: d.TotalAmount}, window, nil
}

// nonce is 32 random hex digits.
func nonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// badInput is a request the signer refuses; it is state.ErrInvalid, so
// callers answer it as bad input.
type badInput string

func (b badInput) Error() string        { return string(b) }
func (b badInput) Is(target error) bool { return target == state.ErrInvalid }

func invalid(msg string) error { return badInput(msg) }

func invalidf(format string, args ...any) error { return badInput(fmt.Sprintf(format, args...)) }
