package reconcile

import "github.com/payd/payd/internal/state"

// refundAttempts is how many numbers refund rf may use: a refund started
// at Douyin (a user's, customer service's, an expiry's) was never payd's
// to send, so a FAIL ends it (parked with Douyin's reason) instead of
// starting attempt n+1; payd's own refunds get the configured attempts.
func refundAttempts(rf *state.Refund, configured int) int {
	if rf.Source != state.SourcePayd {
		return rf.Attempt
	}
	return configured
}
