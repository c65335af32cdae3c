package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/douyin/tradesim"
)

// Trade is what the sandbox needs to serve the trade simulator: its apps
// and the file of the platform key it signs callbacks with ("" = a key of
// this run only).
type Trade struct {
	Apps    []tradesim.App
	KeyFile string
}

// start builds the trade simulator; nil when there is no trade app. It
// returns the public key file payd's trade apps name as
// platform_public_key_file ("" when the key is this run's only).
func (ts Trade) start(sb config.Sandbox) (*tradesim.Server, string, error) {
	if len(ts.Apps) == 0 {
		return nil, "", nil
	}
	key, pubFile, err := PlatformKey(ts.KeyFile)
	if err != nil {
		return nil, "", fmt.Errorf("sandbox: trade platform key: %w", err)
	}
	sim := tradesim.New(tradesim.Config{Apps: ts.Apps, PlatformKey: key, ProcessingDelay: sb.ProcessingDelay.Duration, Seed: sb.Seed})
	return sim, pubFile, nil
}

// PlatformKey reads the simulator's platform private key from file,
// or creates it there (0600) with its public half in file.pub; without a
// file it generates one for this run.
func PlatformKey(file string) (*rsa.PrivateKey, string, error) {
	if file == "" {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		return k, "", err
	}
	pubFile := file + ".pub"
	b, err := os.ReadFile(file)
	if err == nil {
		k, err := trade.ParsePrivateKey(b)
		return k, pubFile, err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", err
	}
	spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, "", err
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	if err := os.WriteFile(file, priv, 0o600); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0o644); err != nil {
		return nil, "", err
	}
	return k, pubFile, nil
}

// sandboxMux serves the trade system's paths (business calls, client
// tokens, the /_sim/trade/ control API) with the trade simulator and
// everything else with the ecpay one, on one listener.
func sandboxMux(ecpay, tr http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(trade.PathPrefix, tr)
	mux.Handle(trade.TokenPath, tr)
	mux.Handle("/_sim/trade/", tr)
	mux.Handle("/", ecpay)
	return mux
}

// listenShared serves h on addr; close stops it.
func listenShared(addr string, h http.Handler) (url string, closeFn func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("sandbox: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), srv.Close, nil
}
