package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/ordersign"
)

func newOrderCmd(g *globals) *cobra.Command {
	var app, file string
	sign := &cobra.Command{
		Use:   "sign [--app APP] (DATA | -f FILE)",
		Short: "Sign a trade app's order data for tt.requestOrder and record the order",
		Long: `sign checks the order data (tt.requestOrder's JSON: outOrderNo, totalAmount, skuList, …),
adds the app's order_entry_schema when it names none, signs it with the app's private key and
key_version, records the order as expected, and prints {data, byte_authorization} for the
mini-program. Sign right before use: Douyin refuses a signature older than an hour.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := argOrFile(args, file)
			if err != nil {
				return err
			}
			cfg, st, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			signed, err := ordersign.New(cfg, st).Sign(cmd.Context(), api.SignOrderRequest{AppID: app, Data: data}, clock.Real{}.Now())
			if err != nil {
				return err
			}
			return writeJSON(g.stdout, signed)
		},
	}
	sign.Flags().StringVar(&app, "app", "", "app_id of the trade app (default: the only configured app)")
	sign.Flags().StringVarP(&file, "file", "f", "", "read the order data from FILE (- for stdin)")
	cmd := &cobra.Command{Use: "order", Short: "Orders of trade apps: sign order data"}
	cmd.AddCommand(sign)
	return cmd
}

// argOrFile is the JSON given as the argument or in file (- is stdin).
func argOrFile(args []string, file string) (json.RawMessage, error) {
	switch {
	case len(args) == 1 && file == "":
		return json.RawMessage(args[0]), nil
	case len(args) == 0 && file == "-":
		return io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	case len(args) == 0 && file != "":
		return os.ReadFile(file)
	}
	return nil, errors.New("order sign: give the order data as DATA or with -f FILE (one of the two)")
}
