package douyin

// The general trade system's (trade_basic) calls, as names for the Limiter:
// each has its own per-app bucket, apart from ecpay's, at the default rate
// (30 calls per second) unless configured. The trade package maps its
// endpoints to these; ecpay's APIs list does not include them.
const (
	APITradeOrderQuery   API = "trade_order_query"
	APITradeQueryCPS     API = "trade_query_cps"
	APITradeRefundCreate API = "trade_refund_create"
	APITradeRefundQuery  API = "trade_refund_query"
	APITradeRefundAudit  API = "trade_refund_audit_callback"
	APITradeSettleCreate API = "trade_settle_create"
	APITradeSettleQuery  API = "trade_settle_query"
)

// TradeAPIs lists the trade system's calls.
var TradeAPIs = []API{
	APITradeOrderQuery, APITradeQueryCPS, APITradeRefundCreate, APITradeRefundQuery,
	APITradeRefundAudit, APITradeSettleCreate, APITradeSettleQuery,
}
