package reliability

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the driver gorm's sqlite dialector uses

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// holdLockEnv, set to a database path, turns the test binary into another
// process that holds that database's write lock (see holdLock).
const holdLockEnv = "PAYD_TEST_HOLD_LOCK"

// holdLock is the second process of TestDatabase_LockedFileWaits: it takes
// the write lock of the SQLite file db (BEGIN EXCLUSIVE), says "locked" on
// stdout, holds it until its stdin closes, commits and exits 0.
func holdLock(db string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "hold lock:", err)
		return 1
	}
	other, err := sql.Open("sqlite3", "file:"+db+"?_busy_timeout=5000")
	if err != nil {
		return fail(err)
	}
	defer other.Close()
	ctx := context.Background()
	conn, err := other.Conn(ctx)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		return fail(err)
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fail(err)
	}
	return 0
}

// TestDatabase_LockedFileWaits has another process hold the database file's
// write lock for 2 s while a reconcile pass starts: the pass waits
// (busy_timeout 5 s), then completes without an error, and the refunds it
// had to submit are executed exactly once.
func TestDatabase_LockedFileWaits(t *testing.T) {
	w := newWorld(t, testworld.Options{Busy: 5 * time.Second, Workers: 4})
	paid := w.Sim.Now()
	wishes := map[string]wish{}
	for i := 0; i < 10; i++ {
		no := fmt.Sprintf("lock%02d", i)
		w.SeedPaid(no, 1000, 0, paid)
		w.Refund(no, no+"-r", 100+int64(i))
		wishes[no] = wish{total: 1000, refunds: map[string]int64{no + "-r": 100 + int64(i)}}
	}

	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), holdLockEnv+"="+w.DBPath)
	release, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	holder.Stderr = &stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("the lock holder did not take the lock: %q, %v\n%s", line, err, stderr.String())
	}
	const hold = 2 * time.Second
	locked := time.Now()
	var released atomic.Bool
	go func() {
		time.Sleep(hold)
		released.Store(true)
		release.Close()
	}()

	ctx := context.Background()
	ps, err := w.Rec.RunOnce(ctx)
	waited := time.Since(locked)
	if err != nil {
		t.Fatalf("pass under a held lock: %v", err)
	}
	if !released.Load() || waited < hold {
		t.Fatalf("pass returned after %s, before the lock was released", waited)
	}
	if err := holder.Wait(); err != nil {
		t.Fatalf("the lock holder: %v\n%s", err, stderr.String())
	}
	if ps.Errors != 0 || ps.Orders != 10 || ps.Actions[reconcile.KindSubmitRefund] != 10 {
		t.Fatalf("pass after waiting %s: %+v", waited, ps)
	}
	t.Logf("locked database: the pass waited %s for another process's lock, then did %d actions on %d orders", waited.Round(time.Millisecond), sum(ps.Actions), ps.Orders)

	w.Converge(20, 2*time.Second, nil)
	ledger := w.Sim.Ledger()
	if r, _ := verifyLedger(t, ledger, w.Sim.Check(), wishes); r != 10 {
		t.Fatalf("%d refunds executed, want 10", r)
	}
	verifyStore(t, w.Store, appID, ledger, wishes)
}

func sum(m map[reconcile.Kind]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// refuseWrites makes the store's database refuse every write (true) or
// accept them again (false). SQLite's store has one connection
// (MaxOpenConns 1), so PRAGMA query_only applies to every statement payd
// issues: a disk refusing writes, without the test needing root.
func refuseWrites(t *testing.T, st *state.Store, on bool) {
	t.Helper()
	v := "OFF"
	if on {
		v = "ON"
	}
	if err := st.DB().Exec("PRAGMA query_only=" + v).Error; err != nil {
		t.Fatalf("PRAGMA query_only=%s: %v", v, err)
	}
}

// counts reads how many rows each table holds.
func counts(t *testing.T, st *state.Store) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, table := range []string{"orders", "refunds", "settlements", "attempts", "callbacks", "events"} {
		var n int64
		if err := st.DB().Table(table).Count(&n).Error; err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		out[table] = n
	}
	return out
}

// writeCalls counts the write calls (create_refund, settle) the simulator
// answered.
func writeCalls(w *testworld.World) int64 {
	st := w.Sim.Stats()
	var n int64
	for _, api := range []douyin.API{douyin.APICreateRefund, douyin.APISettle} {
		for _, c := range st.ByAPI[api] {
			n += c
		}
	}
	return n
}

// signedRefundCallback is a callback as Douyin would send it about refund
// number no.
func signedRefundCallback(t *testing.T, no string, amount int64) []byte {
	t.Helper()
	msg := fmt.Sprintf(`{"appid":%q,"cp_refundno":%q,"cp_extra":"","status":"SUCCESS","refund_amount":%d,"is_all_settled":false,"refunded_at":%d,"message":"","order_id":"x","refund_no":"y"}`,
		appID, no, amount, time.Now().Unix())
	body, err := douyin.EncodeCallback(douyin.CallbackRefund, msg, token, strconv.FormatInt(time.Now().Unix(), 10), "n-"+no)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestDatabase_WritesRefused makes the database refuse writes in the middle
// of payd's work and shows that payd stops acting rather than act without a
// record: the callback handler answers non-2xx (so Douyin retries) and
// stores nothing; a reconcile pass fails without any Douyin write call,
// because no intent can be persisted; a refund whose answer could not be
// recorded (writes refused right after create_refund) is not resent. When
// writes come back everything converges, each refund executed once, and the
// refused writes left no trace.
func TestDatabase_WritesRefused(t *testing.T) {
	var refuseAfterCreate atomic.Bool
	var w *testworld.World
	w = newWorld(t, testworld.Options{
		Workers:   1,
		Callbacks: true,
		Wrap: func(d provider.Provider) provider.Provider {
			return &refusingDouyin{Provider: d, after: &refuseAfterCreate, refuse: func() { refuseWrites(t, w.Store, true) }}
		},
	})
	ctx := context.Background()
	paid := w.Sim.Now().Add(-8 * 24 * time.Hour)
	wishes := map[string]wish{}
	for i := 0; i < 4; i++ {
		no := fmt.Sprintf("ro%d", i)
		w.SeedPaid(no, 2000, 0, paid)
		w.Refund(no, no+"-r", 300)
		wishes[no] = wish{total: 2000, refunds: map[string]int64{no + "-r": 300}, settle: true}
	}
	// 1. Writes refused mid-flight: create_refund reaches Douyin, then the
	// disk refuses the attempt row and the refund's new phase.
	refuseAfterCreate.Store(true)
	if _, err := w.Rec.RunOnce(ctx); err == nil {
		t.Log("pass under refused writes returned no error (its errors are per order)")
	}
	if n := writeCalls(w); n != 1 {
		t.Fatalf("%d write calls reached Douyin, want exactly the 1 made before writes were refused", n)
	}
	before := counts(t, w.Store)

	// 2. While writes are refused, a callback is not acknowledged and not
	// stored.
	body := signedRefundCallback(t, "ro0-r-1", 300)
	for i := 0; i < 3; i++ {
		rec := httptest.NewRecorder()
		w.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/douyin/notify", bytes.NewReader(body)))
		if rec.Code/100 == 2 || bytes.Contains(rec.Body.Bytes(), []byte(`"err_no":0`)) {
			t.Fatalf("callback acknowledged while writes are refused: %d %s", rec.Code, rec.Body.String())
		}
	}
	// 3. More passes: nothing can be claimed or persisted, so nothing is sent.
	for i := 0; i < 3; i++ {
		w.Advance(2 * time.Second)
		_, _ = w.Rec.RunOnce(ctx)
	}
	if n := writeCalls(w); n != 1 {
		t.Fatalf("%d write calls reached Douyin while writes were refused, want 1", n)
	}
	after := counts(t, w.Store)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("rows changed while writes were refused: %v → %v", before, after)
	}

	// 4. Writes come back: the callback is accepted, the refund whose answer
	// was lost is queried (not resent), and everything converges.
	refuseWrites(t, w.Store, false)
	rec := httptest.NewRecorder()
	w.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/douyin/notify", bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("callback after writes came back: %d %s", rec.Code, rec.Body.String())
	}
	// (The simulator's own callbacks, refused earlier, may be retried and
	// stored by now too: count this one by its signature.)
	parsed, err := douyin.ParseCallback(body)
	if err != nil {
		t.Fatal(err)
	}
	var stored int64
	if err := w.Store.DB().Table("callbacks").Where("signature = ?", parsed.Signature).Count(&stored).Error; err != nil {
		t.Fatal(err)
	}
	if stored != 1 {
		t.Fatalf("the refused callback is stored %d times after writes came back, want 1", stored)
	}
	// Orders whose lease could not be handed back (the release was refused
	// too) wait for the lease to end: another worker must not take them
	// while their first worker might still be in a call.
	w.Advance(2*time.Minute + time.Second)
	w.Converge(20, 2*time.Second, nil)
	if _, err := w.Batch.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	w.Converge(20, 2*time.Second, nil)
	ledger := w.Sim.Ledger()
	r, s := verifyLedger(t, ledger, w.Sim.Check(), wishes)
	if r != 4 || s != 4 {
		t.Fatalf("executed %d refunds and %d settlements, want 4 and 4", r, s)
	}
	verifyStore(t, w.Store, appID, ledger, wishes)
	creates := w.Sim.Stats().ByAPI[douyin.APICreateRefund]
	if creates[douyin.ErrNoSuccess] != 4 {
		t.Fatalf("create_refund answered %v, want 4 successes and no resend", creates)
	}
}

// refusingDouyin makes the database refuse writes right after the first
// create_refund reaches Douyin, when after is set: the hardest moment, the
// money has moved and payd cannot write that down.
type refusingDouyin struct {
	provider.Provider
	after  *atomic.Bool
	refuse func()
}

func (d *refusingDouyin) CreateRefund(ctx context.Context, req provider.RefundRequest) (*provider.RefundInfo, error) {
	resp, err := d.Provider.CreateRefund(ctx, req)
	if d.after.CompareAndSwap(true, false) {
		d.refuse()
	}
	return resp, err
}
