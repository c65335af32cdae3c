package state

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// DefaultRefundKey derives an idempotency key for a refund declared without
// one, from what was declared: the same declaration repeated gets the same
// key (and so changes nothing), a different one gets another key.
func DefaultRefundKey(appID, outOrderNo string, amount int64, reason string) string {
	sum := sha256.Sum256([]byte(appID + "\x00" + outOrderNo + "\x00" + strconv.FormatInt(amount, 10) + "\x00" + reason))
	return "r" + hex.EncodeToString(sum[:10])
}
