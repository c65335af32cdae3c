// Package trade is payd's client for Douyin's general trade system
// (通用交易系统, trade_basic): typed requests and responses for the order,
// CPS, refund, audit and settlement endpoints; the classification of every
// answer on err_no whatever the HTTP status; the client_token shared by
// every replica through a TokenStore; RSA signatures (Byte-Authorization for
// order data, Byte-Signature on callbacks); callback parsing, routing legacy
// ecpay-style callbacks to the SHA1 check of package douyin; and Adapter, the
// provider.Provider the reconciler drives.
//
// The package knows nothing of payd's tables. Tokens, secrets and private
// keys never appear in an error or in anything the package formats or logs.
package trade
