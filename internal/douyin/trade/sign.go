package trade

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ErrBadSignature is returned by VerifySignature for any signature that is
// not the key's over the exact bytes.
var ErrBadSignature = errors.New("douyin trade: bad signature")

// AuthScheme is the scheme of a Byte-Authorization header.
const AuthScheme = "SHA256-RSA2048"

// requestString is the five lines a request signature covers.
func requestString(method, uri, timestamp, nonce string, body []byte) []byte {
	s := make([]byte, 0, len(method)+len(uri)+len(timestamp)+len(nonce)+len(body)+5)
	for _, p := range []string{method, uri, timestamp, nonce} {
		s = append(s, p...)
		s = append(s, '\n')
	}
	s = append(s, body...)
	return append(s, '\n')
}

// callbackString is the three lines a callback signature covers.
func callbackString(timestamp, nonce string, body []byte) []byte {
	s := make([]byte, 0, len(timestamp)+len(nonce)+len(body)+3)
	s = append(s, timestamp...)
	s = append(s, '\n')
	s = append(s, nonce...)
	s = append(s, '\n')
	s = append(s, body...)
	return append(s, '\n')
}

// SignAuthorization signs a request (or tt.requestOrder's order data: POST,
// "/requestOrder", the data text) with the app's private key and returns
// the base64 signature of Byte-Authorization.
func SignAuthorization(key *rsa.PrivateKey, method, uri, timestamp, nonce string, body []byte) (string, error) {
	if key == nil {
		return "", errors.New("douyin trade: sign: no private key")
	}
	sum := sha256.Sum256(requestString(method, uri, timestamp, nonce, body))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("douyin trade: sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// VerifySignature checks a callback's Byte-Signature: RSASSA-PKCS1-v1_5
// with SHA-256 over timestamp, nonce and the raw body, each line ending in
// "\n". It returns nil only for a valid signature.
func VerifySignature(pub *rsa.PublicKey, timestamp, nonce string, body []byte, signature string) error {
	if pub == nil {
		return fmt.Errorf("%w: no public key", ErrBadSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("%w: not base64", ErrBadSignature)
	}
	sum := sha256.Sum256(callbackString(timestamp, nonce, body))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return ErrBadSignature
	}
	return nil
}

// SignCallback signs a callback the way Douyin does (for the simulator and
// tests): base64 of the platform key's signature over timestamp, nonce and
// body.
func SignCallback(key *rsa.PrivateKey, timestamp, nonce string, body []byte) (string, error) {
	if key == nil {
		return "", errors.New("douyin trade: sign callback: no private key")
	}
	sum := sha256.Sum256(callbackString(timestamp, nonce, body))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("douyin trade: sign callback: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// VerifyAuthorization checks a request signature with the app's public key
// (the simulator's side of Byte-Authorization).
func VerifyAuthorization(pub *rsa.PublicKey, method, uri, timestamp, nonce string, body []byte, signature string) error {
	if pub == nil {
		return fmt.Errorf("%w: no public key", ErrBadSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("%w: not base64", ErrBadSignature)
	}
	sum := sha256.Sum256(requestString(method, uri, timestamp, nonce, body))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return ErrBadSignature
	}
	return nil
}

// ParsePrivateKey reads an RSA private key from PEM, PKCS#1 ("RSA PRIVATE
// KEY") or PKCS#8 ("PRIVATE KEY").
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("douyin trade: private key: no PEM block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("douyin trade: private key: PKCS#1: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("douyin trade: private key: PKCS#8: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("douyin trade: private key: %T, want RSA", k)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("douyin trade: private key: PEM block %q, want RSA PRIVATE KEY or PRIVATE KEY", block.Type)
}

// ParsePublicKey reads an RSA public key from PEM, PKCS#1 ("RSA PUBLIC
// KEY") or SPKI ("PUBLIC KEY").
func ParsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("douyin trade: public key: no PEM block")
	}
	switch block.Type {
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("douyin trade: public key: PKCS#1: %w", err)
		}
		return k, nil
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("douyin trade: public key: SPKI: %w", err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("douyin trade: public key: %T, want RSA", k)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("douyin trade: public key: PEM block %q, want RSA PUBLIC KEY or PUBLIC KEY", block.Type)
}
