package clock

import (
	"testing"
	"time"
)

func TestFake_Advance(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CST", 8*3600))
	f := NewFake(start)
	if got := f.Now(); !got.Equal(start) || got.Location() != time.UTC {
		t.Fatalf("Now = %v, want %v in UTC", got, start)
	}
	f.Advance(169 * time.Hour)
	if got, want := f.Now(), start.Add(169*time.Hour); !got.Equal(want) {
		t.Fatalf("after Advance: %v, want %v", got, want)
	}
	f.Set(start)
	if got := Func(f)(); !got.Equal(start) {
		t.Fatalf("after Set: %v, want %v", got, start)
	}
}

func TestReal_NowIsUTC(t *testing.T) {
	if loc := (Real{}).Now().Location(); loc != time.UTC {
		t.Fatalf("location %v, want UTC", loc)
	}
}

func TestOffset_Advance(t *testing.T) {
	var o Offset
	before := time.Now().UTC()
	o.Advance(169 * time.Hour)
	got := o.Now()
	if got.Before(before.Add(169*time.Hour)) || got.After(time.Now().UTC().Add(169*time.Hour)) {
		t.Fatalf("Now = %v, want about %v", got, before.Add(169*time.Hour))
	}
}
