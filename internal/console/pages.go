package console

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

// maxQuery bounds a search or filter value (bytes).
const maxQuery = 128

type overviewData struct {
	Snap     *Snapshot
	Gauges   []Count // callbacks since this process started, by result
	Location *time.Location
}

func (c *Console) overview(r *http.Request, _ *session) (string, any, error) {
	snap, err := c.compute(r.Context())
	if err != nil {
		return "", nil, err
	}
	return "overview", overviewData{Snap: snap, Gauges: c.callbackResults(), Location: c.o.Location}, nil
}

// callbackResults reads payd_callbacks_total by result from the process's
// metrics: refused callbacks are never stored, so only the counters know.
func (c *Console) callbackResults() []Count {
	if c.o.Gatherer == nil {
		return nil
	}
	mfs, err := c.o.Gatherer.Gather()
	if err != nil {
		return nil
	}
	sums := map[string]int64{}
	for _, mf := range mfs {
		if mf.GetName() != "payd_callbacks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					sums[l.GetValue()] += int64(m.GetCounter().GetValue())
				}
			}
		}
	}
	var out []Count
	for k, n := range sums {
		out = append(out, Count{Label: k, N: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out
}

func query(r *http.Request, key string) (string, error) {
	v := strings.TrimSpace(r.URL.Query().Get(key))
	if len(v) > maxQuery {
		return "", badRequestf("%s: at most %d bytes", key, maxQuery)
	}
	return v, nil
}

func (c *Console) orders(r *http.Request, _ *session) (string, any, error) {
	status, err := query(r, "status")
	if err != nil {
		return "", nil, err
	}
	app, err := query(r, "app")
	if err != nil {
		return "", nil, err
	}
	after, err := query(r, "after")
	if err != nil {
		return "", nil, err
	}
	p, err := listOrders(r.Context(), c.o.Store.DB(), app, strings.ToUpper(status), after)
	if err != nil {
		return "", nil, err
	}
	return "orders", p, nil
}

// entry is one line of an order's timeline.
type entry struct {
	At     time.Time
	Kind   string // declared, call, callback, event, delivery
	What   string
	Detail string
	Bad    bool
}

type orderData struct {
	D          api.OrderDetail
	Refunds    []state.Refund
	Settlement *state.Settlement
	Deliveries []state.Delivery
	Timeline   []entry
	Now        time.Time
}

func (c *Console) order(r *http.Request, _ *session) (string, any, error) {
	app, no := r.PathValue("app"), r.PathValue("no")
	if len(app) > maxQuery || len(no) > maxQuery {
		return "", nil, badRequestf("order number: at most %d bytes", maxQuery)
	}
	h, err := c.o.Store.History(r.Context(), app, no)
	if err != nil {
		return "", nil, err
	}
	now := c.o.Clock.Now()
	d := api.FromHistory(h, reconcile.Plan(h.OrderView, now, c.o.Policy))
	ids := make([]string, len(h.Events))
	for i, e := range h.Events {
		ids[i] = e.ID
	}
	dels, err := orderDeliveries(r.Context(), c.o.Store.DB(), ids)
	if err != nil {
		return "", nil, err
	}
	return "order", orderData{D: d, Refunds: h.Refunds, Settlement: h.Settlement, Deliveries: dels, Timeline: timeline(h, dels), Now: now}, nil
}

// timeline merges an order's declarations, calls, callbacks, events and
// deliveries, oldest first.
func timeline(h *state.History, dels []state.Delivery) []entry {
	var out []entry
	for _, rf := range h.Refunds {
		out = append(out, entry{At: rf.CreatedAt, Kind: "declared", What: "refund " + rf.Key, Detail: Yuan(rf.Amount) + " " + rf.Reason})
	}
	if st := h.Settlement; st != nil {
		what := "settlement declared"
		if st.Auto {
			what = "settlement created by settle_batch"
		}
		out = append(out, entry{At: st.CreatedAt, Kind: "declared", What: what, Detail: st.OutSettleNo})
	}
	for _, a := range h.Attempts {
		out = append(out, entry{At: a.CreatedAt, Kind: "call", What: a.API + " " + a.MerchantNo,
			Detail: callDetail(a), Bad: a.Outcome != "ok"})
	}
	for _, cb := range h.Callbacks {
		out = append(out, entry{At: cb.ReceivedAt, Kind: "callback", What: cb.Type, Detail: cb.SubjectNo})
	}
	for _, e := range h.Events {
		out = append(out, entry{At: e.CreatedAt, Kind: "event", What: string(e.Type), Detail: e.ID})
	}
	for _, d := range dels {
		at := d.UpdatedAt
		out = append(out, entry{At: at, Kind: "delivery", What: d.EventID + " → " + d.Endpoint,
			Detail: string(d.Status) + deliveryDetail(d), Bad: d.Status == state.DeliveryDead || (d.Status == state.DeliveryPending && d.Attempts > 0)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

func callDetail(a state.Attempt) string {
	s := a.Outcome + ", err_no " + itoa(int64(a.ErrNo)) + ", " + itoa(a.LatencyMS) + " ms"
	if a.ErrTips != "" {
		s += ": " + a.ErrTips
	}
	return s
}

func deliveryDetail(d state.Delivery) string {
	s := ", " + itoa(int64(d.Attempts)) + " attempts"
	if d.LastStatus != 0 {
		s += ", HTTP " + itoa(int64(d.LastStatus))
	}
	if d.LastError != "" {
		s += ": " + d.LastError
	}
	return s
}

func (c *Console) calendar(r *http.Request, _ *session) (string, any, error) {
	snap, err := c.compute(r.Context())
	if err != nil {
		return "", nil, err
	}
	return "calendar", snap, nil
}

type attentionData struct {
	Refunds, Settlements *parkedPage
	Audits               *auditsPage
	Deliveries           *deliveriesPage
	Now                  time.Time
	Cursors              url.Values
}

func (c *Console) attention(r *http.Request, _ *session) (string, any, error) {
	ctx, db := r.Context(), c.o.Store.DB()
	var cur [4]string
	for i, k := range []string{"refunds", "settlements", "deliveries", "audits"} {
		v, err := query(r, k)
		if err != nil {
			return "", nil, err
		}
		cur[i] = v
	}
	rf, err := listParked(ctx, db, "refunds", cur[0])
	if err != nil {
		return "", nil, err
	}
	st, err := listParked(ctx, db, "settlements", cur[1])
	if err != nil {
		return "", nil, err
	}
	dl, err := listDeliveries(ctx, db, "", true, cur[2])
	if err != nil {
		return "", nil, err
	}
	au, err := listAudits(ctx, db, cur[3])
	if err != nil {
		return "", nil, err
	}
	return "attention", attentionData{Refunds: rf, Settlements: st, Audits: au, Deliveries: dl, Now: c.o.Clock.Now(), Cursors: r.URL.Query()}, nil
}

type searchData struct {
	Q    string
	Hits []hit
}

func (c *Console) search(r *http.Request, _ *session) (string, any, error) {
	q, err := query(r, "q")
	if err != nil {
		return "", nil, err
	}
	d := searchData{Q: q}
	if q != "" {
		if d.Hits, err = search(r.Context(), c.o.Store.DB(), q); err != nil {
			return "", nil, err
		}
	}
	return "search", d, nil
}

type eventsData struct {
	Page      *deliveriesPage
	Endpoints []EndpointStats
}

func (c *Console) events(r *http.Request, _ *session) (string, any, error) {
	ep, err := query(r, "endpoint")
	if err != nil {
		return "", nil, err
	}
	after, err := query(r, "after")
	if err != nil {
		return "", nil, err
	}
	p, err := listDeliveries(r.Context(), c.o.Store.DB(), ep, r.URL.Query().Get("failed") == "1", after)
	if err != nil {
		return "", nil, err
	}
	cs, err := c.o.Store.Counters(r.Context(), state.CounterQuery{Kinds: []state.CounterKind{state.CountDeliveries}})
	if err != nil {
		return "", nil, err
	}
	var snap Snapshot
	c.eventStats(cs, &snap)
	return "events", eventsData{Page: p, Endpoints: snap.Events}, nil
}
