package douyin

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"sort"
	"strings"
)

// signExcluded lists the body fields that never take part in the request
// signature.
var signExcluded = map[string]bool{
	"app_id":              true,
	"thirdparty_id":       true,
	"sign":                true,
	"other_settle_params": true,
}

// Sign computes the ecpay v1 request signature of params with the app's SALT.
//
// Each value is taken as the string that is sent, trimmed of spaces; one pair
// of surrounding double quotes is dropped and the rest trimmed again; empty
// values and the literal "null" are left out, "0" stays. The SALT is added as
// one more value, the values are sorted byte-wise, joined with "&" and hashed
// with MD5. The result is lowercase hex. Keys app_id, thirdparty_id, sign and
// other_settle_params are excluded.
func Sign(params map[string]string, salt string) string {
	values := make([]string, 0, len(params)+1)
	for k, v := range params {
		if signExcluded[k] {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = strings.TrimSpace(v[1 : len(v)-1])
		}
		if v == "" || v == "null" {
			continue
		}
		values = append(values, v)
	}
	values = append(values, salt)
	sort.Strings(values)
	sum := md5.Sum([]byte(strings.Join(values, "&")))
	return hex.EncodeToString(sum[:])
}

// CallbackSignature computes msg_signature of a Douyin callback: the SHA1, in
// lowercase hex, of token, timestamp, nonce and msg sorted byte-wise and
// concatenated without a separator. token is the console's payment Token,
// not the SALT.
func CallbackSignature(token, timestamp, nonce, msg string) string {
	parts := []string{token, timestamp, nonce, msg}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}
