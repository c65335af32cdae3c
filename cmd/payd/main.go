// Command payd is a declarative reconciliation daemon for Douyin
// guaranteed-payment orders: the merchant records the refunds and
// settlements it wants, and payd drives every order there through the ecpay
// API, under its rate limits, without ever paying out twice.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// A second signal exits at once.
		<-ctx.Done()
		stop()
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		<-ch
		fmt.Fprintln(os.Stderr, "payd: second signal, exiting now")
		os.Exit(130)
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// Exit codes, as Terraform's: 0 done, 1 error, 2 something needs you,
// 130 interrupted.
const (
	exitFailed      = 1
	exitNeedsYou    = 2
	exitInterrupted = 130
)

// exitError carries a process exit code; a nil Err prints nothing.
type exitError struct {
	Code int
	Err  error
}

func (e *exitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *exitError) Unwrap() error { return e.Err }

// exitCode prints err (if any) and maps it to the process exit code.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(stderr, "payd:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "payd:", err)
	return 1
}
