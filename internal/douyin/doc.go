// Package douyin is payd's client for Douyin's mini-program guaranteed
// payment API (ecpay v1): request signing (Sign), callback verification
// (VerifyCallback), typed requests and responses, a Client with one method per
// endpoint, the classification of every failure into what a caller may do
// next (Classify), and per-app, per-API rate limits (Limiter).
//
// Every request is turned into its body fields in one place (each request
// type's Fields method): the strings produced there are both signed and sent,
// so integers always travel as plain digits and never as 1e+06.
//
// The package knows nothing of payd's tables. Secrets (an app's SALT and
// Token) never appear in an error or in anything the package formats.
package douyin
