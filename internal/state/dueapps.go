package state

import (
	"slices"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Due orders are found through one index, ix_orders_due (app_id,
// next_action_at) of the orders that have a next action, one arm per app
// (schema 17, migrateDueIndex). A query over all apps therefore first
// needs the apps that have such orders.

// orderAppsQuery lists the distinct app ids of the orders with a next
// action, one seek in ix_orders_due per app (a loose index scan): the cost
// grows with the apps, not the orders.
const orderAppsQuery = `WITH RECURSIVE a(id) AS (
	SELECT MIN(app_id) FROM orders WHERE next_action_at IS NOT NULL
	UNION ALL
	SELECT (SELECT MIN(app_id) FROM orders WHERE app_id > a.id AND next_action_at IS NOT NULL) FROM a WHERE a.id IS NOT NULL
) SELECT id FROM a WHERE id IS NOT NULL`

// appsTTL is how long a claim that names its apps trusts the list of the
// others (see appList.others); orders this Store inserts are added at
// once, another replica's are seen within it.
const appsTTL = time.Second

// appList caches the app ids that have orders, shared by every Store
// bound to one database handle.
type appList struct {
	mu   sync.Mutex
	ids  []string
	read time.Time
}

// orderApps reads the app ids that have orders, sorted, and refreshes the
// cache.
func (s *Store) orderApps(tx *gorm.DB) ([]string, error) {
	var ids []string
	if err := tx.Raw(orderAppsQuery).Scan(&ids).Error; err != nil {
		return nil, err
	}
	slices.Sort(ids)
	if s.apps != nil {
		s.apps.mu.Lock()
		s.apps.ids, s.apps.read = ids, time.Now()
		s.apps.mu.Unlock()
	}
	return ids, nil
}

// othersOf returns the apps with orders that q does not name, whose due
// orders q's Others share takes. A q that names no apps (ClaimDue, plan)
// reads them afresh; a q that names its apps (a reconciler's claim, many
// a second) trusts a list up to appsTTL old, since what it finds there
// are orders of apps it has no configuration for.
func (s *Store) othersOf(tx *gorm.DB, q Quota) ([]string, error) {
	var ids []string
	fresh := false
	if len(q.Apps) > 0 && s.apps != nil {
		s.apps.mu.Lock()
		if time.Since(s.apps.read) < appsTTL {
			ids, fresh = s.apps.ids, true
		}
		s.apps.mu.Unlock()
	}
	if !fresh {
		var err error
		if ids, err = s.orderApps(tx); err != nil {
			return nil, err
		}
	}
	others := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, named := q.Apps[id]; !named {
			others = append(others, id)
		}
	}
	return others, nil
}

// noteApp adds appID to the cached apps when this Store inserted an order
// of it (a rolled back insert leaves an app whose arm finds nothing, until
// the next read).
func (s *Store) noteApp(appID string) {
	if s.apps == nil {
		return
	}
	s.apps.mu.Lock()
	defer s.apps.mu.Unlock()
	if i, found := slices.BinarySearch(s.apps.ids, appID); !found {
		s.apps.ids = slices.Insert(slices.Clone(s.apps.ids), i, appID)
	}
}
