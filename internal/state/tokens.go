package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/payd/payd/internal/douyin/trade"
)

// ClientToken is an app's trade-system client_token, shared by every
// replica, with the lease of the one replica refreshing it. Token is a
// secret: it is never logged or formatted.
type ClientToken struct {
	AppID     string     `gorm:"primaryKey;size:64"`
	Token     string     `gorm:"size:512;not null;default:''"`
	ExpiresAt *time.Time // nil until the first token is stored
	// LeaseHolder refreshes the token until LeaseUntil; "" when nobody does.
	LeaseHolder string `gorm:"size:64;not null;default:''"`
	LeaseUntil  *time.Time
	UpdatedAt   time.Time
}

// TableName is client_tokens.
func (ClientToken) TableName() string { return "client_tokens" }

// String renders the row without its token.
func (c ClientToken) String() string { return fmt.Sprintf("client_token of %s", c.AppID) }

// ClientTokens is the trade.TokenStore over the client_tokens table.
type ClientTokens struct{ s *Store }

var _ trade.TokenStore = (*ClientTokens)(nil)

// ClientTokens returns the store's shared client tokens.
func (s *Store) ClientTokens() *ClientTokens { return &ClientTokens{s: s} }

// Load returns the app's token, the zero Token when there is none.
func (c *ClientTokens) Load(ctx context.Context, appID string) (trade.Token, error) {
	var row ClientToken
	err := c.s.session(ctx).Where("app_id = ?", appID).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return trade.Token{}, nil
	}
	if err != nil {
		return trade.Token{}, fmt.Errorf("load client_token of %s: %w", appID, err)
	}
	tok := trade.Token{Value: row.Token}
	if row.ExpiresAt != nil {
		tok.ExpiresAt = row.ExpiresAt.UTC()
	}
	return tok, nil
}

// Claim takes the refresh lease for holder until until, unless another
// holder's lease is live at now; it creates the app's row when missing.
func (c *ClientTokens) Claim(ctx context.Context, appID, holder string, now, until time.Time) (bool, error) {
	if holder == "" || len(holder) > 64 {
		return false, fmt.Errorf("claim client_token of %s: %w", appID, invalidf("holder: %q is not 1..64 bytes", holder))
	}
	var claimed bool
	err := c.s.write(ctx, func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&ClientToken{AppID: appID}).Error; err != nil {
			return err
		}
		res := tx.Model(&ClientToken{}).
			Where("app_id = ? AND (lease_holder = '' OR lease_holder = ? OR lease_until IS NULL OR lease_until <= ?)", appID, holder, utc(now)).
			Updates(map[string]any{"lease_holder": holder, "lease_until": utc(until)})
		claimed = res.RowsAffected == 1
		return res.Error
	})
	if err != nil {
		return false, fmt.Errorf("claim client_token of %s: %w", appID, err)
	}
	return claimed, nil
}

// Replace stores next and drops the lease, only if the stored token is still
// old ("" for none yet).
func (c *ClientTokens) Replace(ctx context.Context, appID, old string, next trade.Token) (bool, error) {
	exp := utc(next.ExpiresAt)
	var replaced bool
	err := c.s.write(ctx, func(tx *gorm.DB) error {
		if old == "" {
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&ClientToken{AppID: appID}).Error; err != nil {
				return err
			}
		}
		res := tx.Model(&ClientToken{}).Where("app_id = ? AND token = ?", appID, old).
			Updates(map[string]any{"token": next.Value, "expires_at": exp, "lease_holder": "", "lease_until": nil})
		replaced = res.RowsAffected == 1
		return res.Error
	})
	if err != nil {
		return false, fmt.Errorf("replace client_token of %s: %w", appID, err)
	}
	return replaced, nil
}
